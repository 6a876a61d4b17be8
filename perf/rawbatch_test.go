package perf

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBuildBatchDecodes(t *testing.T) {
	payload := newPayload(300)
	cycle := []int{10, 300, 0, 128}
	f := func(maxBytes int) {
		t.Helper()
		i := 0
		next := func() int { i++; return cycle[(i-1)%len(cycle)] }
		rng := rand.New(rand.NewPCG(3, 4))
		ts := time.UnixMilli(1_700_000_000_000)
		enc, n, pb := buildBatch(maxBytes, next, 5, payload, rng, ts)

		var b kmsg.RecordBatch
		if err := b.ReadFrom(enc); err != nil {
			t.Fatalf("kmsg cannot read the batch: %v", err)
		}
		if b.Magic != 2 || int(b.NumRecords) != n || int(b.LastOffsetDelta) != n-1 || b.ProducerID != -1 || b.FirstTimestamp != ts.UnixMilli() {
			t.Fatalf("batch header %+v for %d records", b, n)
		}
		if n == 0 || (n > 1 && len(enc) > maxBytes) {
			t.Fatalf("%d records in %d bytes, limit %d", n, len(enc), maxBytes)
		}
		if int(b.Length) != len(enc)-12 {
			t.Fatalf("Length %d, want %d", b.Length, len(enc)-12)
		}
		if want := int32(crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli))); b.CRC != want {
			t.Fatalf("CRC %08x, want %08x", b.CRC, want)
		}
		rest, gotPayload := b.Records, 0
		for i := range n {
			var r kmsg.Record
			if err := r.ReadFrom(rest); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			l, used := binary.Varint(rest)
			if used <= 0 || int(l)+used > len(rest) {
				t.Fatalf("record %d length %d overruns", i, l)
			}
			size := cycle[i%len(cycle)]
			if r.OffsetDelta != int32(i) || !bytes.Equal(r.Value, payload[:size]) || len(r.Key) == 0 {
				t.Fatalf("record %d = delta %d, %d-byte value, key %q", i, r.OffsetDelta, len(r.Value), r.Key)
			}
			gotPayload += len(r.Key) + len(r.Value)
			rest = rest[used+int(l):]
		}
		if len(rest) != 0 {
			t.Fatalf("%d bytes after the last record", len(rest))
		}
		if gotPayload != pb {
			t.Fatalf("payload bytes %d, buildBatch said %d", gotPayload, pb)
		}
		// The next record would not have fitted (keys are one digit here).
		nr := kmsg.Record{OffsetDelta: int32(n), Key: []byte("0"), Value: payload[:cycle[n%len(cycle)]]}
		nr.Length = int32(len(nr.AppendTo(nil)) - 1)
		if nextLen := len(nr.AppendTo(nil)); len(enc)+nextLen <= maxBytes {
			t.Fatalf("batch of %d bytes stopped at %d records though a %d-byte record fits in %d", len(enc), n, nextLen, maxBytes)
		}
	}
	f(1)       // below one record: still one record
	f(500)     // a few
	f(1 << 20) // thousands, like the default
}

func TestEncodeRawRequestSplitsAtBody(t *testing.T) {
	batch, _, _ := buildBatch(1, func() int { return 16 }, 0, newPayload(16), nil, time.Now())
	for _, v := range []int16{3, 8, 9, 12, 13} {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = v, -1, 1000
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic, tp.TopicID = "t", [16]byte{1}
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition, p.Records = 2, batch
		tp.Partitions = append(tp.Partitions, p)
		req.Topics = append(req.Topics, tp)

		f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c"))
		hdr, body, err := encodeRawRequest(f, req)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		// The header must be exactly what the formatter writes with a
		// real correlation id once ours is patched in.
		binary.BigEndian.PutUint32(hdr[correlationAt:], 77)
		want := f.AppendRequest(nil, req, 77)
		if got := append(bytes.Clone(hdr), body...); !bytes.Equal(got, want) {
			t.Fatalf("v%d: patched frame differs from AppendRequest(corr=77)", v)
		}
		var back kmsg.ProduceRequest
		back.Version = v
		if err := back.ReadFrom(body); err != nil || len(back.Topics) != 1 || !bytes.Equal(back.Topics[0].Partitions[0].Records, batch) {
			t.Fatalf("v%d: body does not decode to the request: %v", v, err)
		}
	}
}

func TestResponseBodySkipsHeaderTags(t *testing.T) {
	f := func(frame []byte, corr int32, flexible bool, want []byte, wantErr bool) {
		t.Helper()
		got, err := responseBody(frame, corr, flexible)
		if (err != nil) != wantErr || !bytes.Equal(got, want) {
			t.Fatalf("responseBody(%x) = %x, %v; want %x, error %v", frame, got, err, want, wantErr)
		}
	}
	f([]byte{0, 0, 0, 5, 0xaa}, 5, false, []byte{0xaa}, false)
	f([]byte{0, 0, 0, 5, 0, 0xaa}, 5, true, []byte{0xaa}, false)             // no tags
	f([]byte{0, 0, 0, 5, 1, 3, 2, 9, 9, 0xaa}, 5, true, []byte{0xaa}, false) // one 2-byte tag
	f([]byte{0, 0, 0, 6, 0, 0xaa}, 5, true, nil, true)                       // wrong correlation id
	f([]byte{0, 0, 0, 5, 1, 3, 9, 9}, 5, true, nil, true)                    // tag overruns
}
