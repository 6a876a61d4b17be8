package segstore

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// openLog loads a partition directory. Segments wholly below the recovery
// point (everything, after a clean shutdown) are trusted: their indexes are
// loaded, or rebuilt if missing or failing the sanity check. From the segment
// holding the recovery point on, every batch is read and CRC-checked; the
// first torn or corrupt batch and everything after it are cut away, and the
// indexes and leader-epoch cache are rebuilt from what remains. The
// producer state is rebuilt last, from the recovered log (prodrebuild.go).
func (st *Store) openLog(topic string, partition int32, dir string, recoveryPoint, startOffset int64, clean bool) (*Log, error) {
	l := &Log{store: st, topic: topic, partition: partition, dir: dir, cfg: st.cfg.Defaults.normalized(),
		startOffset: startOffset, lastFlush: st.now(), cidx: -1}
	l.noteConfigLocked()
	if done, err := finishSwaps(st.fs, dir); err != nil {
		return nil, err
	} else if done {
		st.log.Warn("finished the segment swap of a cleaning interrupted by a crash", "dir", dir)
	}
	names, err := st.fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			_ = st.fs.Remove(dir + "/" + n) // a checkpoint write cut short
		}
		if b, ok := parseSegName(n); ok {
			bases = append(bases, b)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	if l.epochs, err = loadEpochCache(st.fs, l.epochPath()); err != nil {
		st.log.Warn("leader epoch checkpoint unreadable, rebuilding from the log", "dir", dir, "err", err)
		l.epochs = epochCache{}
		recoveryPoint, clean = 0, false // rescan everything so the cache is rebuilt
	}

	for i, base := range bases {
		// A gap between segments is legal: compaction leaves them. (A crash
		// cannot: a segment is synced before the next one is created.) An
		// overlap is not: it would serve offsets twice.
		if i > 0 && base < l.segs[i-1].next {
			st.log.Warn("segment starts before the end of the previous one, dropping it and later ones",
				"dir", dir, "segment", base, "previous_end", l.segs[i-1].next)
			l.dropAfter(i - 1)
			break
		}
		f, err := st.fs.OpenRW(segName(dir, base, ".log"))
		if err != nil {
			l.closeSegs()
			return nil, err
		}
		s := &segment{base: base, dir: dir, f: f, next: base, maxTs: -1, firstTs: -1}
		s.refs.Store(1)
		if s.size, err = f.Size(); err != nil {
			l.closeSegs()
			return nil, err
		}
		l.segs = append(l.segs, s)
		nextBase := int64(-1)
		if i+1 < len(bases) {
			nextBase = bases[i+1]
		}
		trusted := clean || (nextBase >= 0 && nextBase <= recoveryPoint)
		if trusted {
			err = s.load(st.fs)
		}
		if !trusted || err != nil {
			if err != nil {
				st.log.Warn("segment failed its check, recovering it", "dir", dir, "base", base, "err", err)
			}
			cut, rerr := s.recover(&l.epochs, l.cfg.IndexIntervalBytes)
			if rerr != nil {
				l.closeSegs()
				return nil, rerr
			}
			if cut {
				st.log.Warn("truncated a torn or corrupt log tail", "dir", dir, "segment", base, "kept_bytes", s.size)
				l.dropAfter(i)
				break
			}
		}
	}
	if len(l.segs) == 0 {
		s, err := createSegment(st.fs, dir, startOffset)
		if err != nil {
			return nil, err
		}
		l.segs = append(l.segs, s)
	}
	l.leo = l.active().next
	l.next = l.leo
	l.startOffset = min(max(l.startOffset, l.segs[0].base), l.leo)
	l.epochs.truncateFromEnd(l.leo)
	l.epochs.truncateFromStart(l.startOffset)
	// Whatever survived is now synced and becomes the recovery point.
	if err := l.Flush(); err != nil {
		l.closeSegs()
		return nil, err
	}
	l.mu.Lock()
	if err := l.rebuildProducersLocked(); err != nil {
		l.mu.Unlock()
		l.closeSegs()
		return nil, err
	}
	err = l.saveEpochsLocked()
	l.mu.Unlock()
	return l, err
}

// dropAfter deletes every segment after index i (they follow a corrupt tail).
func (l *Log) dropAfter(i int) {
	for _, base := range l.listBasesAfter(i) {
		for _, ext := range []string{".log", ".index", ".timeindex"} {
			_ = l.store.fs.Remove(segName(l.dir, base, ext))
		}
	}
	for _, s := range l.segs[i+1:] {
		s.release()
	}
	l.segs = l.segs[:i+1]
}

func (l *Log) listBasesAfter(i int) []int64 {
	names, _ := l.store.fs.ReadDir(l.dir)
	var out []int64
	for _, n := range names {
		if b, ok := parseSegName(n); ok && b > l.segs[i].base {
			out = append(out, b)
		}
	}
	return out
}

func (l *Log) closeSegs() {
	for _, s := range l.segs {
		s.release()
	}
	l.segs = nil
}

// load trusts a segment's data and reads its index files, then scans the
// batches after the last index entry to find the end offset and max timestamp.
func (s *segment) load(fs vfs.FS) error {
	ib, err1 := vfs.ReadFile(fs, segName(s.dir, s.base, ".index"))
	tb, err2 := vfs.ReadFile(fs, segName(s.dir, s.base, ".timeindex"))
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	offs, err := decodeOffsets(ib, s.size)
	if err != nil {
		return err
	}
	maxRel := uint32(0)
	if len(offs) > 0 {
		maxRel = offs[len(offs)-1].rel
	}
	times, err := decodeTimes(tb, ^uint32(0))
	if err != nil {
		return err
	}
	s.ix = segIndex{offsets: offs, times: times}
	start := int64(0)
	if len(offs) > 0 {
		start = int64(offs[len(offs)-1].pos)
	}
	if n := len(times); n > 0 {
		s.maxTs, s.relOfMaxTs = times[n-1].ts, times[n-1].rel
	}
	var last int64 = -1
	err = s.scan(start, s.size, func(_ int64, h *batchHeader) bool {
		last = h.LastOffset()
		if h.MaxTimestamp > s.maxTs && h.RecordCount > 0 { // compaction's empty batches hold no timestamp
			s.maxTs, s.relOfMaxTs = h.MaxTimestamp, uint32(last-s.base)
		}
		s.ix.sinceLast += h.Size()
		return true
	})
	if err != nil {
		return err
	}
	if last >= 0 {
		if uint32(last-s.base) < maxRel {
			return fmt.Errorf("index names offset %d past the last batch %d", s.base+int64(maxRel), last)
		}
		s.next = last + 1
	}
	if s.size > 0 && s.firstTs < 0 {
		s.firstTs = s.maxTs
	}
	// A timestamp comes from a batch with records. Without one, only a scan
	// of every header tells whether there are records (rare: compaction
	// emptied the segment, or its records carry no timestamps).
	s.hasRecords = s.maxTs >= 0
	if !s.hasRecords {
		err = s.scan(0, s.size, func(_ int64, h *batchHeader) bool {
			s.hasRecords = h.RecordCount > 0
			return !s.hasRecords
		})
		if err != nil {
			return err
		}
	}
	s.synced, s.indexOnDisk = s.size, true
	return nil
}

// recover reads every batch of the segment, verifies it, and rebuilds the
// indexes and epochs. cut reports that a torn or corrupt tail was removed.
func (s *segment) recover(epochs *epochCache, indexInterval int64) (cut bool, err error) {
	s.ix, s.maxTs, s.next, s.indexOnDisk, s.hasRecords = segIndex{}, -1, s.base, false, false
	buf := make([]byte, 64<<10)
	var pos int64
	for pos < s.size {
		if s.size-pos < batchHeaderSize {
			break
		}
		if _, err := s.f.ReadAt(buf[:batchHeaderSize], pos); err != nil && err != io.EOF {
			return false, storageErr("recovery read", err)
		}
		h := parseHeader(buf)
		if h.Size() < batchHeaderSize || h.Size() > s.size-pos || h.BaseOffset < s.next {
			break
		}
		if int64(len(buf)) < h.Size() {
			buf = make([]byte, h.Size())
		}
		b := buf[:h.Size()]
		if _, err := s.f.ReadAt(b, pos); err != nil && err != io.EOF {
			return false, storageErr("recovery read", err)
		}
		if _, err := validateStored(b); err != nil {
			break
		}
		if h.MaxTimestamp > s.maxTs && h.RecordCount > 0 {
			s.maxTs, s.relOfMaxTs = h.MaxTimestamp, uint32(h.LastOffset()-s.base)
		}
		s.hasRecords = s.hasRecords || h.RecordCount > 0
		if s.firstTs < 0 {
			s.firstTs = h.MaxTimestamp
		}
		s.ix.maybeAdd(indexInterval, uint32(h.LastOffset()-s.base), uint32(pos), h.Size(), s.maxTs, s.relOfMaxTs)
		epochs.assign(h.LeaderEpoch, h.BaseOffset)
		s.next = h.LastOffset() + 1
		pos += h.Size()
	}
	if pos < s.size {
		padding := s.isPadding(pos)
		if err := s.f.Truncate(pos); err != nil {
			return false, storageErr("truncate torn tail", err)
		}
		s.size = pos
		// A direct write's zero padding is not a torn tail: nothing after
		// it is suspect, so later segments stay.
		cut = !padding
	}
	return cut, nil
}

// isPadding reports whether the bytes from pos to the end of the file are
// what a direct write leaves after its data (direct.go): fewer than one
// block of zeros, ending on a block boundary.
func (s *segment) isPadding(pos int64) bool {
	n := s.size - pos
	if s.size%directAlign != 0 || n <= 0 || n >= directAlign {
		return false
	}
	b := make([]byte, n)
	if _, err := s.f.ReadAt(b, pos); err != nil && err != io.EOF {
		return false
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
