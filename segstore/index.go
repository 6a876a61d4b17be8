package segstore

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// The sparse indexes use Kafka's file formats so operators' tools recognise
// them: `.index` holds (relative offset u32, position u32) pairs and
// `.timeindex` (timestamp i64, relative offset u32), big-endian. As in Kafka,
// an entry is added before a batch once more than index.interval.bytes have
// been appended since the last one, and names the batch's last offset and its
// start position.
//
// Entries live in memory (8 or 12 bytes per ~4 KiB of log, about 2–3 MB per
// GiB). The files are written whole when a segment rolls and at clean
// shutdown; after a crash the indexes of unflushed segments are rebuilt by
// the recovery scan, so they never need an fsync on the append path.

type offsetEntry struct{ rel, pos uint32 }

type timeEntry struct {
	ts  int64
	rel uint32
}

type segIndex struct {
	offsets []offsetEntry
	times   []timeEntry
	// sinceLast counts bytes appended since the last offset entry.
	sinceLast int64
}

// maybeAdd records a batch that starts at pos, before it is appended.
// maxTsSoFar/relOfMaxTs describe the segment's max timestamp including it.
func (ix *segIndex) maybeAdd(interval int64, rel, pos uint32, size int64, maxTsSoFar int64, relOfMaxTs uint32) {
	if ix.sinceLast > interval {
		ix.offsets = append(ix.offsets, offsetEntry{rel, pos})
		if n := len(ix.times); n == 0 || maxTsSoFar > ix.times[n-1].ts {
			ix.times = append(ix.times, timeEntry{maxTsSoFar, relOfMaxTs})
		}
		ix.sinceLast = 0
	}
	ix.sinceLast += size
}

// lookup returns the position to start scanning from for relative offset rel:
// the position of the last entry at or below it, else 0.
func (ix *segIndex) lookup(rel uint32) uint32 {
	i := sort.Search(len(ix.offsets), func(i int) bool { return ix.offsets[i].rel > rel })
	if i == 0 {
		return 0
	}
	return ix.offsets[i-1].pos
}

// floorPos returns the largest indexed batch start position at or below pos
// (0 when none): a batch boundary to scan forward from.
func (ix *segIndex) floorPos(pos int64) int64 {
	i := sort.Search(len(ix.offsets), func(i int) bool { return int64(ix.offsets[i].pos) > pos })
	if i == 0 {
		return 0
	}
	return int64(ix.offsets[i-1].pos)
}

// lookupTime returns the relative offset to start scanning from for the first
// record with timestamp >= ts: the entry with the largest timestamp below ts
// (every record before it is older than ts), else 0.
func (ix *segIndex) lookupTime(ts int64) (rel uint32, ok bool) {
	i := sort.Search(len(ix.times), func(i int) bool { return ix.times[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return ix.times[i-1].rel, true
}

// truncate drops entries naming offsets at or above rel (batches being cut).
func (ix *segIndex) truncate(rel uint32) {
	i := sort.Search(len(ix.offsets), func(i int) bool { return ix.offsets[i].rel >= rel })
	ix.offsets = ix.offsets[:i]
	j := sort.Search(len(ix.times), func(i int) bool { return ix.times[i].rel >= rel })
	ix.times = ix.times[:j]
	ix.sinceLast = 0 // conservative: the next batch starts a new interval count
}

func (ix *segIndex) encodeOffsets() []byte {
	buf := make([]byte, 8*len(ix.offsets))
	for i, e := range ix.offsets {
		binary.BigEndian.PutUint32(buf[8*i:], e.rel)
		binary.BigEndian.PutUint32(buf[8*i+4:], e.pos)
	}
	return buf
}

func (ix *segIndex) encodeTimes() []byte {
	buf := make([]byte, 12*len(ix.times))
	for i, e := range ix.times {
		binary.BigEndian.PutUint64(buf[12*i:], uint64(e.ts))
		binary.BigEndian.PutUint32(buf[12*i+8:], e.rel)
	}
	return buf
}

// decodeOffsets parses an .index file and checks it the way Kafka's sanity
// check does: whole entries, strictly increasing offsets and positions, all
// positions inside the segment. A failed check means "rebuild".
func decodeOffsets(buf []byte, segSize int64) ([]offsetEntry, error) {
	if len(buf)%8 != 0 {
		return nil, fmt.Errorf("index size %d is not a multiple of 8", len(buf))
	}
	out := make([]offsetEntry, len(buf)/8)
	for i := range out {
		e := offsetEntry{binary.BigEndian.Uint32(buf[8*i:]), binary.BigEndian.Uint32(buf[8*i+4:])}
		if int64(e.pos) >= segSize {
			return nil, fmt.Errorf("index entry %d points at %d, past the segment's %d bytes", i, e.pos, segSize)
		}
		if i > 0 && (e.rel <= out[i-1].rel || e.pos <= out[i-1].pos) {
			return nil, fmt.Errorf("index entry %d is not increasing", i)
		}
		out[i] = e
	}
	return out, nil
}

// decodeTimes parses a .timeindex file; maxRel bounds the relative offsets.
func decodeTimes(buf []byte, maxRel uint32) ([]timeEntry, error) {
	if len(buf)%12 != 0 {
		return nil, fmt.Errorf("time index size %d is not a multiple of 12", len(buf))
	}
	out := make([]timeEntry, len(buf)/12)
	for i := range out {
		e := timeEntry{int64(binary.BigEndian.Uint64(buf[12*i:])), binary.BigEndian.Uint32(buf[12*i+8:])}
		if e.rel > maxRel {
			return nil, fmt.Errorf("time index entry %d names relative offset %d past %d", i, e.rel, maxRel)
		}
		if i > 0 && (e.ts <= out[i-1].ts || e.rel < out[i-1].rel) {
			return nil, fmt.Errorf("time index entry %d is not increasing", i)
		}
		out[i] = e
	}
	return out, nil
}
