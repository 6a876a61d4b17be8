package segstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	iofs "io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// Producer snapshots, Kafka's `<20-digit offset>.snapshot` in the partition
// directory: the producer state of every batch below that offset, so
// opening a log replays only the batches after the newest snapshot. The
// layout is Kafka's ProducerSnapshot v1 (all big-endian):
//
//	version int16 (1)
//	crc     uint32, CRC32C of everything after it
//	entries int32 count, then per producer:
//	  producerId int64, epoch int16, lastSequence int32, lastOffset int64,
//	  offsetDelta int32, timestamp int64, coordinatorEpoch int32,
//	  currentTxnFirstOffset int64
//
// As in Kafka only the last batch of each producer is kept, so after a
// restart duplicates of older batches are known only where the replay after
// the snapshot saw them.

const (
	snapshotVersion   = 1
	snapshotHeader    = 2 + 4 + 4 // version, crc, entry count
	snapshotEntrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8
	snapshotCRCFrom   = 6 // the CRC covers the bytes from the entry count on
)

// snapEntry is one producer in a snapshot.
type snapEntry struct {
	pid         int64
	epoch       int16
	lastSeq     int32
	lastOffset  int64
	offsetDelta int32
	ts          int64
}

func snapshotName(dir string, offset int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.snapshot", offset))
}

// parseSnapshotName returns the offset of a `.snapshot` file name.
func parseSnapshotName(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".snapshot")
	if !ok || len(s) != 20 {
		return 0, false
	}
	off, err := strconv.ParseInt(s, 10, 64)
	return off, err == nil && off >= 0
}

// listSnapshots returns the offsets of the snapshot files in dir, ascending.
func listSnapshots(fs vfs.FS, dir string) ([]int64, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, n := range names {
		if off, ok := parseSnapshotName(n); ok {
			out = append(out, off)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// removeSnapshots deletes the snapshots for which gone is true and syncs the
// directory, so a deleted snapshot cannot come back after a crash.
func removeSnapshots(fs vfs.FS, dir string, gone func(off int64, newest bool) bool) error {
	offs, err := listSnapshots(fs, dir)
	if err != nil {
		return err
	}
	removed := false
	for i, off := range offs {
		if !gone(off, i == len(offs)-1) {
			continue
		}
		if err := fs.Remove(snapshotName(dir, off)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
		removed = true
	}
	if removed {
		return fs.SyncDir(dir)
	}
	return nil
}

func encodeSnapshot(entries []snapEntry) []byte {
	b := make([]byte, snapshotHeader, snapshotHeader+len(entries)*snapshotEntrySize)
	be := binary.BigEndian
	be.PutUint16(b, snapshotVersion)
	be.PutUint32(b[6:], uint32(len(entries)))
	for _, e := range entries {
		b = be.AppendUint64(b, uint64(e.pid))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = be.AppendUint32(b, uint32(e.lastSeq))
		b = be.AppendUint64(b, uint64(e.lastOffset))
		b = be.AppendUint32(b, uint32(e.offsetDelta))
		b = be.AppendUint64(b, uint64(e.ts))
		b = be.AppendUint32(b, ^uint32(0)) // coordinatorEpoch: no transactions
		b = be.AppendUint64(b, ^uint64(0)) // currentTxnFirstOffset: none
	}
	be.PutUint32(b[2:], crc32.Checksum(b[snapshotCRCFrom:], castagnoli))
	return b
}

// decodeSnapshot parses a snapshot file; any damage is an error (the caller
// ignores the file and rebuilds from an older one or the log).
func decodeSnapshot(b []byte) ([]snapEntry, error) {
	if len(b) < snapshotHeader {
		return nil, fmt.Errorf("producer snapshot of %d bytes is shorter than its %d-byte header", len(b), snapshotHeader)
	}
	be := binary.BigEndian
	if v := int16(be.Uint16(b)); v != snapshotVersion {
		return nil, fmt.Errorf("producer snapshot version %d, only %d is known", v, snapshotVersion)
	}
	if want, got := be.Uint32(b[2:]), crc32.Checksum(b[snapshotCRCFrom:], castagnoli); want != got {
		return nil, fmt.Errorf("producer snapshot crc32c mismatch: header says %08x, data has %08x", want, got)
	}
	n := int32(be.Uint32(b[6:]))
	if n < 0 || int64(len(b)-snapshotHeader) != int64(n)*snapshotEntrySize {
		return nil, fmt.Errorf("producer snapshot claims %d entries in %d bytes", n, len(b)-snapshotHeader)
	}
	out := make([]snapEntry, n)
	p := b[snapshotHeader:]
	for i := range out {
		e := &out[i]
		e.pid = int64(be.Uint64(p))
		e.epoch = int16(be.Uint16(p[8:]))
		e.lastSeq = int32(be.Uint32(p[10:]))
		e.lastOffset = int64(be.Uint64(p[14:]))
		e.offsetDelta = int32(be.Uint32(p[22:]))
		e.ts = int64(be.Uint64(p[26:]))
		// coordinatorEpoch (p[34:]) and currentTxnFirstOffset (p[38:]) are
		// transaction state, which sluice does not keep.
		if e.pid < 0 || (e.lastSeq >= 0 && (e.offsetDelta < 0 || e.lastOffset < int64(e.offsetDelta))) {
			return nil, fmt.Errorf("producer snapshot entry %d is invalid: %+v", i, *e)
		}
		p = p[snapshotEntrySize:]
	}
	return out, nil
}

// snapshotEntriesAt returns the state as it was before offset at, sorted by
// producer id: the current state with every change made at or after at
// taken back (appends still in flight when a segment rolls).
func (ps *producerState) snapshotEntriesAt(at int64) []snapEntry {
	var before map[int64]*producerUndo
	for i := range ps.undo {
		u := &ps.undo[i]
		if u.offset < at {
			continue
		}
		if before == nil {
			before = map[int64]*producerUndo{}
		}
		if before[u.pid] == nil { // the earliest change holds the state before at
			before[u.pid] = u
		}
	}
	out := make([]snapEntry, 0, len(ps.m))
	add := func(pid int64, e *producerEntry) {
		se := snapEntry{pid: pid, epoch: e.epoch, lastSeq: -1, lastOffset: -1, ts: e.lastTs}
		if e.n > 0 {
			b := &e.batches[e.n-1]
			se.lastSeq, se.lastOffset = b.lastSeq, b.lastOffset
			se.offsetDelta = int32(b.lastOffset - b.firstOffset)
		}
		out = append(out, se)
	}
	for pid, e := range ps.m {
		if u := before[pid]; u != nil {
			if u.existed {
				add(pid, &u.prev)
			}
			continue
		}
		add(pid, e)
	}
	for pid, u := range before {
		if ps.m[pid] == nil && u.existed { // expired since
			add(pid, &u.prev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// load puts a snapshot's producers into ps (expired ones too: the expiry
// after the replay removes them, as it does those the replay brings back).
func (ps *producerState) load(entries []snapEntry) {
	for _, se := range entries {
		if ps.m == nil {
			ps.m = map[int64]*producerEntry{}
		}
		e := &producerEntry{epoch: se.epoch, lastTs: se.ts}
		if se.lastSeq >= 0 {
			e.batches[0] = batchMeta{
				firstSeq: decSeq(se.lastSeq, se.offsetDelta), lastSeq: se.lastSeq,
				firstOffset: se.lastOffset - int64(se.offsetDelta), lastOffset: se.lastOffset, maxTs: se.ts,
			}
			e.n = 1
		}
		ps.m[se.pid] = e
	}
}
