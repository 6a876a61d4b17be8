package node

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBadInputClosesOnlyThatConnection throws malformed traffic at a broker
// that holds data, and checks that each bad connection is closed, a healthy
// client keeps working throughout, and nothing stored is lost.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	n := startNode(t, "", nil)
	ctx := testCtx(t)
	adm := newAdmin(t, n)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "keep"); err != nil {
		t.Fatal(err)
	}
	good := dialRaw(t, n)
	resp := good.request(produceReq(7, -1, "keep", map[int32][]byte{0: encodeBatch(1, []byte("a"), []byte("b")), 1: encodeBatch(1, []byte("c"))}), 1).(*kmsg.ProduceResponse)
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(p.ErrorCode))
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	cases := map[string]func(r *rawConn){
		"2GiB frame":     func(r *rawConn) { r.write([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0}) },
		"negative frame": func(r *rawConn) { r.write([]byte{0xff, 0xff, 0xff, 0xf0}) },
		"101MiB frame":   func(r *rawConn) { r.write(kbin.AppendInt32(nil, 101<<20)) },
		"garbage body": func(r *rawConn) {
			// A Produce header followed by noise: the body cannot decode.
			r.send(0, 7, 9, garbage)
		},
		"short header": func(r *rawConn) { r.write([]byte{0, 0, 0, 3, 0, 0, 0}) },
		"unknown key":  func(r *rawConn) { r.send(999, 0, 3, nil) },
		"unsupported produce version": func(r *rawConn) {
			r.send(0, 99, 4, nil)
		},
		"truncated body": func(r *rawConn) {
			body := produceReq(7, -1, "keep", map[int32][]byte{0: encodeBatch(1, []byte("x"))}).AppendTo(nil)
			r.send(0, 7, 5, body[:len(body)/2])
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			r := dialRaw(t, n)
			fn(r)
			r.expectClosed()
			// The healthy connection still gets answers.
			md := good.request(kmsg.NewPtrMetadataRequest(), 100).(*kmsg.MetadataResponse)
			if len(md.Brokers) != 1 {
				t.Fatalf("metadata after %s: %+v", name, md)
			}
		})
	}

	// A frame announced but never completed, then the client goes away.
	r := dialRaw(t, n)
	r.write([]byte{0, 0, 1, 0, 0, 0})
	r.c.Close()

	// ApiVersions at a version the broker does not serve gets the v0
	// fallback with UNSUPPORTED_VERSION and the supported list.
	av := dialRaw(t, n)
	av.send(18, 99, 7, nil)
	body := av.readFrame(7)
	avr := kmsg.NewPtrApiVersionsResponse()
	avr.SetVersion(0)
	if err := avr.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if avr.ErrorCode != kerr.UnsupportedVersion.Code || len(avr.ApiKeys) < 5 {
		t.Fatalf("ApiVersions fallback: %+v", avr)
	}

	// Everything stored is intact and a real client still works.
	for p, want := range map[int32]int64{0: 2, 1: 1} {
		if hw := n.reg.partition("keep", p).hw.Load(); hw != want {
			t.Errorf("partition %d hw %d, want %d", p, hw, want)
		}
	}
	cl := newClient(t, n, kgo.DefaultProduceTopic("keep"))
	if err := cl.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatalf("produce after bad input: %v", err)
	}
}

// TestBadBatchFailsOnlyItsPartition sends one request with a good batch for
// partition 0 and a corrupted one for partition 1.
func TestBadBatchFailsOnlyItsPartition(t *testing.T) {
	n := startNode(t, "", nil)
	ctx := testCtx(t)
	if _, err := newAdmin(t, n).CreateTopic(ctx, 2, 1, nil, "mixed"); err != nil {
		t.Fatal(err)
	}
	bad := encodeBatch(1, []byte("corrupt me"))
	bad[len(bad)-3] ^= 0xff // payload byte: the CRC no longer matches
	short := encodeBatch(1, []byte("short"))[:40]
	c := dialRaw(t, n)
	for i, tc := range []struct {
		records []byte
		want    *kerr.Error
	}{
		{bad, kerr.CorruptMessage},
		{short, kerr.CorruptMessage},
		{[]byte{}, kerr.InvalidRecord},
	} {
		good := encodeBatch(1, []byte("fine"))
		resp := c.request(produceReq(8, -1, "mixed", map[int32][]byte{0: good, 1: tc.records}), int32(i)).(*kmsg.ProduceResponse)
		ps := resp.Topics[0].Partitions
		if ps[0].ErrorCode != 0 || ps[0].BaseOffset != int64(i) {
			t.Fatalf("case %d: good partition: %+v", i, ps[0])
		}
		if ps[1].ErrorCode != tc.want.Code {
			t.Fatalf("case %d: bad partition error %v, want %v", i, kerr.ErrorForCode(ps[1].ErrorCode), tc.want)
		}
	}
	if hw := n.reg.partition("mixed", 1).hw.Load(); hw != 0 {
		t.Fatalf("bad partition has %d records", hw)
	}
	if hw := n.reg.partition("mixed", 0).hw.Load(); hw != 3 {
		t.Fatalf("good partition has %d records, want 3", hw)
	}
}

// TestInvalidTopicNames covers Produce, Metadata and CreateTopics.
func TestInvalidTopicNames(t *testing.T) {
	n := startNode(t, "", nil)
	c := dialRaw(t, n)
	names := []string{"", ".", "..", "has space", "slash/", string(bytes.Repeat([]byte("x"), 250)), "ünïcode"}
	for i, name := range names {
		pr := c.request(produceReq(7, 1, name, map[int32][]byte{0: encodeBatch(1, []byte("v"))}), int32(i)).(*kmsg.ProduceResponse)
		if code := pr.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTopicException.Code {
			t.Errorf("produce to %q: %v", name, kerr.ErrorForCode(code))
		}
		mr := kmsg.NewPtrMetadataRequest()
		mr.Version = 9
		mr.AllowAutoTopicCreation = true
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = ptr(name)
		mr.Topics = append(mr.Topics, mt)
		md := c.request(mr, int32(100+i)).(*kmsg.MetadataResponse)
		if code := md.Topics[0].ErrorCode; code != kerr.InvalidTopicException.Code {
			t.Errorf("metadata for %q: %v", name, kerr.ErrorForCode(code))
		}
		cr := kmsg.NewPtrCreateTopicsRequest()
		cr.Version = 5
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, 1, 1
		cr.Topics = append(cr.Topics, ct)
		crr := c.request(cr, int32(200+i)).(*kmsg.CreateTopicsResponse)
		if code := crr.Topics[0].ErrorCode; code != kerr.InvalidTopicException.Code {
			t.Errorf("create %q: %v", name, kerr.ErrorForCode(code))
		}
	}
	if topics, _ := n.reg.count(); topics != 0 {
		t.Fatalf("%d topics exist after invalid names", topics)
	}
}
