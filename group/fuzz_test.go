package group

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzLoad feeds arbitrary records to Load: it must not panic, must own the
// partition afterwards, and the loaded state must answer requests.
//
// The input is split into records as [u16 key len][key][u16 value len or
// 0xffff for a tombstone][value]...
func FuzzLoad(f *testing.F) {
	h := newHarness(f)
	ids, gen := h.stableGroup("g", 2)
	h.do(commitReq("g", ids[0], gen, map[string]int64{"t1/0": 1}))
	h.do(commitReq("g", "", -1, map[string]int64{"t1/0": 1}))
	var seed []byte
	for _, r := range h.log.records(PartitionFor("g", 50)) {
		seed = appendFuzzRecord(seed, r)
	}
	f.Add(seed)
	f.Add(appendFuzzRecord(nil, Record{Key: groupKey("g")}))
	f.Add([]byte{0, 2, 0, 2, 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		// One partition, so every group the fuzzer invents is in place.
		h := newHarnessOn(t, newFakeLog(), func(c *Config) { c.Partitions = 1 })
		err := h.c.Load(0, func(yield func(k, v []byte) bool) {
			b := data
			for len(b) >= 2 {
				n := int(binary.BigEndian.Uint16(b))
				b = b[2:]
				if n > len(b) {
					return
				}
				key := b[:n]
				b = b[n:]
				var value []byte
				if len(b) >= 2 {
					m := int(binary.BigEndian.Uint16(b))
					b = b[2:]
					if m != 0xffff {
						if m > len(b) {
							m = len(b)
						}
						value = b[:m]
						b = b[m:]
					}
				}
				if !yield(key, value) {
					return
				}
			}
		})
		if err != nil {
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("unexpected error %v", err)
			}
		}
		if !h.c.Owns(0) {
			t.Fatal("partition not owned after load")
		}
		// Whatever was loaded must serve requests and timers without panicking.
		lr := h.do(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
		for _, g := range lr.Groups {
			h.describe(g.Group)
			h.fetch(g.Group)
		}
		h.clock.Advance(24 * time.Hour)
	})
}

func appendFuzzRecord(b []byte, r Record) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Key)))
	b = append(b, r.Key...)
	if r.Value == nil {
		return binary.BigEndian.AppendUint16(b, 0xffff)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Value)))
	return append(b, r.Value...)
}
