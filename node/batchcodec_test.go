package node

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/sluicemq/sluice/group"
)

// TestBatchCodecRoundTrip: batches built by buildBatch (with offsets
// stamped, as the log does) walk back to the same records, tombstones
// included; a torn tail is left unconsumed.
func TestBatchCodecRoundTrip(t *testing.T) {
	var buf []byte
	var want []group.Record
	base := int64(100)
	for b := 0; b < 3; b++ {
		var recs []group.Record
		for i := 0; i < 5; i++ {
			r := group.Record{Key: []byte(fmt.Sprintf("k%d-%d", b, i)), Value: []byte(fmt.Sprintf("v%d", i))}
			if i == 2 {
				r.Value = nil // tombstone
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
	buf = append(buf, buildBatch([]group.Record{{Key: []byte("torn")}}, 0)[:70]...)
	var got []group.Record
	var offs []int64
	used, err := walkBatches(buf, func(o int64, k, v []byte) error {
		got = append(got, group.Record{Key: k, Value: v})
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
		if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Value, want[i].Value) ||
			(got[i].Value == nil) != (want[i].Value == nil) || offs[i] != 100+int64(i) {
			t.Fatalf("record %d: got %q=%q at %d, want %q=%q at %d", i, got[i].Key, got[i].Value, offs[i],
				want[i].Key, want[i].Value, 100+i)
		}
	}
}

// FuzzWalkBatches: arbitrary bytes never panic the reader of
// __consumer_offsets; whatever it accepts it accepted whole.
func FuzzWalkBatches(f *testing.F) {
	f.Add(buildBatch([]group.Record{{Key: []byte("k"), Value: []byte("v")}}, 1))
	f.Add(buildBatch([]group.Record{{Key: []byte("k")}, {Key: nil, Value: []byte("x")}}, 1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		used, _ := walkBatches(b, func(int64, []byte, []byte) error { return nil })
		if used < 0 || used > len(b) {
			t.Fatalf("used %d of %d bytes", used, len(b))
		}
	})
}
