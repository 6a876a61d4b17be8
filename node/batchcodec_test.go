package node

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// TestBatchCodecRoundTrip: batches built by buildBatch (with offsets
// stamped, as the log does) walk back to the same records, tombstones
// included; a torn tail is left unconsumed.
func TestBatchCodecRoundTrip(t *testing.T) {
	var buf []byte
	var want []kv
	base := int64(100)
	for b := 0; b < 3; b++ {
		var recs []kv
		for i := 0; i < 5; i++ {
			r := kv{key: []byte(fmt.Sprintf("k%d-%d", b, i)), value: []byte(fmt.Sprintf("v%d", i))}
			if i == 2 {
				r.value = nil // tombstone
			}
			recs = append(recs, r)
		}
		batch := buildBatch(recs, 1700000000000)
		binary.BigEndian.PutUint64(batch, uint64(base))
		base += int64(len(recs))
		buf = append(buf, batch...)
		want = append(want, recs...)
	}
	whole := len(buf)
	buf = append(buf, buildBatch([]kv{{key: []byte("torn")}}, 0)[:70]...)
	var got []kv
	var offs []int64
	used, err := walkBatches(buf, func(o int64, k, v []byte) error {
		got = append(got, kv{key: k, value: v})
		offs = append(offs, o)
		return nil
	})
	if err != nil || used != whole {
		t.Fatalf("walk: used %d of %d, err %v", used, whole, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].key, want[i].key) || !bytes.Equal(got[i].value, want[i].value) ||
			(got[i].value == nil) != (want[i].value == nil) || offs[i] != 100+int64(i) {
			t.Fatalf("record %d: got %q=%q at %d, want %q=%q at %d", i, got[i].key, got[i].value, offs[i],
				want[i].key, want[i].value, 100+i)
		}
	}
}

// FuzzWalkBatches: arbitrary bytes never panic the reader of
// __consumer_offsets; whatever it accepts it accepted whole.
func FuzzWalkBatches(f *testing.F) {
	f.Add(buildBatch([]kv{{key: []byte("k"), value: []byte("v")}}, 1))
	f.Add(buildBatch([]kv{{key: []byte("k")}, {key: nil, value: []byte("x")}}, 1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		used, _ := walkBatches(b, func(int64, []byte, []byte) error { return nil })
		if used < 0 || used > len(b) {
			t.Fatalf("used %d of %d bytes", used, len(b))
		}
	})
}
