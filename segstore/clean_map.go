package segstore

import (
	"hash/maphash"
	"math/bits"
)

// offsetMap maps a key to the offset of its latest record, like Kafka's
// SkimpyOffsetMap: keys are stored as a 128-bit hash (two seeded maphash
// values), not as bytes, so memory is a fixed 24 bytes a slot whatever the
// key size, in one open-addressing table (linear probing) sized once per
// pass and filled to at most 3/4. Two keys colliding on 128 bits would make
// the older one look superseded; with per-process random seeds that is
// beyond practical reach, the same bet Kafka makes with MD5.
//
// Not safe for concurrent use (the cleaner owns it).
type offsetMap struct {
	slots        []mapSlot
	mask         uint64
	used, limit  int
	seed1, seed2 maphash.Seed
}

// mapSlot is one entry; off holds offset+1 so that the zero slot is empty.
type mapSlot struct {
	h1, h2 uint64
	off    int64
}

const (
	mapSlotBytes = 24
	minMapSlots  = 16
)

// reset empties m and sizes it for want keys, within budget bytes. It
// reuses the table when its size is right.
func (m *offsetMap) reset(want, budget int64) {
	maxSlots := max(floorPow2(budget/mapSlotBytes), minMapSlots)
	n := int64(minMapSlots)
	for n < maxSlots && n*3/4 < want {
		n *= 2
	}
	if int64(len(m.slots)) != n {
		m.slots = make([]mapSlot, n)
	} else {
		clear(m.slots)
	}
	if m.seed1 == (maphash.Seed{}) {
		m.seed1, m.seed2 = maphash.MakeSeed(), maphash.MakeSeed()
	}
	m.mask, m.used, m.limit = uint64(n-1), 0, int(n*3/4)
}

// room reports whether n more keys certainly fit.
func (m *offsetMap) room(n int) bool { return m.used+n <= m.limit }

func floorPow2(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return 1 << (63 - bits.LeadingZeros64(uint64(n)))
}

// find returns the slot holding the key's hash, or the empty slot where it
// would go, and the hash.
func (m *offsetMap) find(key []byte) (*mapSlot, uint64, uint64) {
	h1, h2 := maphash.Bytes(m.seed1, key), maphash.Bytes(m.seed2, key)
	for i := h1 & m.mask; ; i = (i + 1) & m.mask {
		if s := &m.slots[i]; s.off == 0 || s.h1 == h1 && s.h2 == h2 {
			return s, h1, h2
		}
	}
}

// put records offset as the key's latest. The caller checks room first: a
// full table would probe forever.
func (m *offsetMap) put(key []byte, offset int64) {
	s, h1, h2 := m.find(key)
	if s.off == 0 {
		s.h1, s.h2 = h1, h2
		m.used++
	}
	s.off = offset + 1
}

// get returns the key's latest offset, or -1.
func (m *offsetMap) get(key []byte) int64 {
	s, _, _ := m.find(key)
	return s.off - 1
}
