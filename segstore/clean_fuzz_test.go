package segstore

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzCleanRecordWalker: the cleaner's record walker never panics; what it
// accepts tiles the input exactly, and rewriting it with any subset of its
// records kept gives a batch that passes the stored-batch check and holds
// exactly that subset, byte for byte.
func FuzzCleanRecordWalker(f *testing.F) {
	for _, recs := range [][]kv{
		{rec("a", "1"), tombstone("b"), {val: "nokey"}},
		{rec("", ""), rec("k", string(make([]byte, 300)))},
	} {
		b := keyedBatch(recs, 5, nil, -1, 0)
		f.Add(b[batchHeaderSize:], uint8(len(recs)), uint64(0b101))
	}
	f.Add([]byte{2, 0, 0}, uint8(1), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, count uint8, mask uint64) {
		h := batchHeader{RecordCount: int32(count), LastOffDelta: 255}
		var raws [][]byte
		err := walkBatchRecords(data, &h, func(r *record) error {
			if r.hasKey != (r.key != nil) && len(r.key) > 0 {
				t.Fatalf("key %q but hasKey %v", r.key, r.hasKey)
			}
			raws = append(raws, r.raw)
			return nil
		})
		if err != nil {
			return
		}
		if !bytes.Equal(bytes.Join(raws, nil), data) {
			t.Fatal("accepted records do not tile the input")
		}
		b := make([]byte, batchHeaderSize, batchHeaderSize+len(data))
		be := binary.BigEndian
		b[offMagic] = 2
		be.PutUint32(b[offLastOffsetDelt:], 255)
		be.PutUint64(b[offProducerID:], ^uint64(0))
		b = append(b, data...)
		finishHeader(b, int32(count), 0, 0)
		h, err = validateStored(b)
		if err != nil {
			t.Fatalf("walker accepts what the stored-batch check refuses: %v", err)
		}
		var bb batchBuilder
		i := 0
		var want [][]byte
		out, kept, err := bb.rebuild(b, &h, func(r *record) bool {
			keep := mask>>(i%64)&1 == 1
			if i++; keep {
				want = append(want, r.raw)
			}
			return keep
		})
		if err != nil {
			t.Fatal(err)
		}
		if int(kept) != len(want) || kept == 0 && count > 0 && out != nil {
			t.Fatalf("kept %d, want %d (out %d bytes)", kept, len(want), len(out))
		}
		if kept == 0 {
			return
		}
		oh, err := validateStored(out)
		if err != nil {
			t.Fatalf("rebuilt batch fails the check: %v", err)
		}
		if oh.RecordCount != kept || oh.LastOffDelta != 255 || !bytes.Equal(out[batchHeaderSize:], bytes.Join(want, nil)) {
			t.Fatalf("rebuilt batch %+v does not hold the %d kept records", oh, kept)
		}
	})
}

// FuzzCleanCompressedRebuild: a compressed batch rewritten with a subset
// of its records decompresses to exactly that subset.
func FuzzCleanCompressedRebuild(f *testing.F) {
	f.Add(uint64(0b1011), uint8(1))
	f.Add(uint64(1), uint8(4))
	f.Fuzz(func(t *testing.T, mask uint64, codec uint8) {
		codecs := []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
		c := codecs[int(codec)%len(codecs)]
		var recs []kv
		for i := 0; i < 20; i++ {
			recs = append(recs, rec(string(rune('a'+i)), string(bytes.Repeat([]byte{byte(i)}, i*7))))
		}
		b := keyedBatch(recs, 1, &c, -1, 0)
		h := parseHeader(b)
		var bb batchBuilder
		i := 0
		out, kept, err := bb.rebuild(b, &h, func(*record) bool { k := mask>>i&1 == 1; i++; return k })
		if err != nil {
			t.Fatal(err)
		}
		if kept == 0 || kept == 20 {
			return
		}
		got, _, err := decodeBatches([][]byte{out})
		if err != nil {
			t.Fatal(err)
		}
		j := 0
		for i := range recs {
			if mask>>i&1 == 1 {
				if got[j].off != int64(i) || got[j].key != *recs[i].key || got[j].val != recs[i].val {
					t.Fatalf("record %d: got %v", i, got[j])
				}
				j++
			}
		}
		if oh := parseHeader(out); oh.Compression() != h.Compression() {
			t.Fatal("codec changed")
		}
	})
}
