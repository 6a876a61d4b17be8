package segstore

import (
	"fmt"
	"time"
)

// roll creates a new active segment at base. Called by the committer without
// l.mu (file creation and the directory sync are I/O); only the committer
// changes the active segment while appends are queued.
func (l *Log) roll(base int64) (*segment, error) {
	s, err := createSegment(l.store.fs, l.dir, base)
	if err != nil {
		return nil, storageErr("roll segment", err)
	}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.writeProducerSnapshot(base)
	return s, nil
}

// finishRoll makes the segment about to stop being active durable and writes
// its indexes, so recovery never has to scan it. Committer goroutine, before
// the new segment is created.
func (l *Log) finishRoll(old *segment) {
	l.mu.Lock()
	// A rolled segment's file must end at its size: recovery trusts the
	// size of every segment but the last. The cut is synced with the data.
	cut, err := old.truncatePaddingLocked()
	old.closeDirectLocked()
	needSync := old.synced < old.size || cut
	size := old.size
	l.mu.Unlock()
	if needSync && err == nil {
		if err = old.f.Sync(); err != nil {
			err = storageErr("fdatasync rolled segment", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.err = err
		return
	}
	old.synced = size
	if err := old.writeIndexes(l.store.fs); err != nil {
		// The indexes are rebuilt on the next open if missing; not fatal.
		l.store.log.Warn("write segment index", "dir", l.dir, "base", old.base, "err", err)
	}
	l.advanceRecoveryPointLocked()
}

// advanceRecoveryPointLocked moves the recovery point to the end of the
// longest fully synced prefix of segments.
func (l *Log) advanceRecoveryPointLocked() {
	for _, s := range l.segs {
		if s.synced < s.size {
			l.recoveryPoint = max(l.recoveryPoint, s.base)
			return
		}
		l.recoveryPoint = max(l.recoveryPoint, s.next)
	}
}

// Flush fdatasyncs every segment holding unsynced data and advances the
// recovery point. Safe for concurrent use; it syncs what was completed when
// it started.
func (l *Log) Flush() error {
	l.mu.Lock()
	if l.err != nil {
		defer l.mu.Unlock()
		return l.err
	}
	type job struct {
		s    *segment
		size int64
	}
	var jobs []job
	for _, s := range l.segs {
		if s.synced < s.size {
			s.acquire()
			jobs = append(jobs, job{s, s.size})
		}
	}
	l.mu.Unlock()
	var err error
	for _, j := range jobs {
		if err == nil {
			err = j.s.f.Sync()
		}
		if err == nil {
			l.mu.Lock()
			j.s.synced = max(j.s.synced, j.size)
			l.mu.Unlock()
		}
		j.s.release()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.err = storageErr("fdatasync", err)
		return l.err
	}
	l.unflushed = 0
	l.lastFlush = l.store.now()
	l.advanceRecoveryPointLocked()
	return nil
}

// TruncateTo removes every batch holding an offset at or above offset (a
// batch that straddles offset goes whole, as in Kafka), for a follower
// reconciling with its leader; the log then ends at offset, or at the base
// of the straddling batch, never past offset (compaction's gaps included).
// It needs no appends in flight (ErrBusy otherwise) and syncs the cut
// before returning. Safe for concurrent use.
func (l *Log) TruncateTo(offset int64) error {
	l.lockFiles() // a cleaning pass stops: the segments it reads may go
	defer l.cl.files.Unlock()
	cleanedCut := false
	defer func() {
		// After mu is released: a checkpoint above the new end would make
		// the cleaner take data appended later for clean.
		if cleanedCut {
			if err := l.store.saveCleanerOffsets(); err != nil {
				l.store.log.Warn("write cleaner-offset-checkpoint", "dir", l.dir, "err", err)
			}
		}
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if l.inflight > 0 {
		return ErrBusy
	}
	if offset >= l.leo {
		return nil
	}
	offset = max(offset, l.startOffset)
	i := len(l.segs) - 1
	for i > 0 && l.segs[i].base > offset {
		i--
	}
	s := l.segs[i]
	pos, h, found, err := s.find(offset, s.size)
	if err != nil {
		return storageErr("truncate: find offset", err)
	}
	newEnd := offset
	if found {
		// A batch straddling offset goes whole; one past offset (offset
		// lies in a gap compaction left) must not pull the end up to it.
		newEnd = min(h.BaseOffset, offset)
	} else {
		pos = s.size
	}
	if err := l.dropSnapshotsAboveLocked(newEnd); err != nil {
		return err
	}
	// Later segments go first, newest first, and durably: were s cut first,
	// a crash could bring them back after the cut, a gap recovery accepts
	// (compaction leaves them), and the cut-away batches would return —
	// overlapping whatever is appended at the new end.
	for j := len(l.segs) - 1; j > i; j-- {
		dead := l.segs[j]
		if err := dead.remove(l.store.fs); err != nil {
			l.store.log.Warn("remove truncated segment", "dir", l.dir, "base", dead.base, "err", err)
		}
		dead.release()
	}
	l.segs = l.segs[:i+1]
	if err := l.store.fs.SyncDir(l.dir); err != nil {
		l.err = storageErr("sync directory after truncate", err)
		return l.err
	}
	s.dw.padded, s.dw.tailOK = false, false
	if err := s.f.Truncate(pos); err != nil {
		l.err = storageErr("truncate", err)
		return l.err
	}
	if err := s.f.Sync(); err != nil {
		l.err = storageErr("fdatasync after truncate", err)
		return l.err
	}
	s.size, s.synced, s.next = pos, min(s.synced, pos), max(newEnd, s.base)
	s.ix.truncate(uint32(max(newEnd-s.base, 0)))
	s.indexOnDisk = false
	if err := s.rescanMaxTimestamp(); err != nil {
		l.err = storageErr("truncate: rescan", err)
		return l.err
	}
	l.leo, l.next = s.next, s.next
	if l.cl.cleanedTo > l.leo {
		l.cl.cleanedTo, cleanedCut = l.leo, true
	}
	l.recoveryPoint = min(l.recoveryPoint, l.leo)
	l.startOffset = min(l.startOffset, l.leo)
	l.epochs.truncateFromEnd(l.leo)
	if err := l.rebuildProducersLocked(); err != nil {
		l.err = err
		return err
	}
	return l.saveEpochsLocked()
}

// rescanMaxTimestamp recomputes the segment's max timestamp after a cut.
func (s *segment) rescanMaxTimestamp() error {
	s.maxTs, s.relOfMaxTs, s.hasRecords = -1, 0, false
	return s.scan(0, s.size, func(_ int64, h *batchHeader) bool {
		if h.MaxTimestamp > s.maxTs && h.RecordCount > 0 {
			s.maxTs, s.relOfMaxTs = h.MaxTimestamp, uint32(h.LastOffset()-s.base)
		}
		s.hasRecords = s.hasRecords || h.RecordCount > 0
		return true
	})
}

// DeleteRecords moves the log start offset up to offset (Kafka's
// DeleteRecords; the caller bounds it by the high watermark) and deletes the
// segments wholly below it. It returns the new log start offset. Safe for
// concurrent use.
func (l *Log) DeleteRecords(offset int64) (int64, error) {
	l.lockFiles() // no cleaning pass renames what this deletes
	defer l.cl.files.Unlock()
	l.mu.Lock()
	if l.err != nil {
		defer l.mu.Unlock()
		return 0, l.err
	}
	if offset < 0 || offset > l.leo {
		defer l.mu.Unlock()
		return 0, fmt.Errorf("%w: delete up to %d, log ends at %d", ErrOffsetOutOfRange, offset, l.leo)
	}
	l.startOffset = max(l.startOffset, offset)
	dead := l.dropSegmentsLocked(func(s *segment) bool { return s.next <= l.startOffset })
	start := l.startOffset
	l.epochs.truncateFromStart(start)
	err := l.saveEpochsLocked()
	l.mu.Unlock()
	l.deleteSegments(dead)
	l.pruneSnapshotsBelowStart()
	if cerr := l.store.Checkpoint(); err == nil {
		err = cerr
	}
	return start, err
}

// dropSegmentsLocked detaches leading non-active segments for which gone is
// true and returns them; the log start offset rises to the first kept one.
func (l *Log) dropSegmentsLocked(gone func(*segment) bool) []*segment {
	n := 0
	for n < len(l.segs)-1 && gone(l.segs[n]) {
		n++
	}
	dead := append([]*segment(nil), l.segs[:n]...)
	l.segs = append(l.segs[:0], l.segs[n:]...)
	if n > 0 {
		l.startOffset = max(l.startOffset, l.segs[0].base)
	}
	return dead
}

func (l *Log) deleteSegments(dead []*segment) {
	for _, s := range dead {
		if err := s.remove(l.store.fs); err != nil {
			l.store.log.Warn("delete segment", "dir", l.dir, "base", s.base, "err", err)
		}
		s.release()
	}
}

// EnforceRetention deletes the oldest segments beyond retention.ms (by their
// largest timestamp) and retention.bytes, never the active one, and returns
// how many it deleted. Only cleanup.policy=delete logs (also with compact)
// are subject to it; a log being cleaned waits for the next round. Safe for
// concurrent use.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	if !l.cl.files.TryLock() {
		return 0, nil
	}
	defer l.cl.files.Unlock()
	l.mu.Lock()
	if l.err != nil || l.closed || !l.cfg.Cleanup.Delete() {
		defer l.mu.Unlock()
		return 0, l.err
	}
	cfg := l.cfg
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	cutoff := now.Add(-cfg.RetentionMs).UnixMilli()
	dead := l.dropSegmentsLocked(func(s *segment) bool {
		// A segment compaction left without records (only emptied batches,
		// or nothing) must not hold back the ones after it. One whose
		// records carry no timestamps is not that: it is kept, as ever.
		byTime := cfg.RetentionMs >= 0 && (s.maxTs >= 0 && s.maxTs < cutoff || !s.hasRecords && cfg.Cleanup.Compact())
		bySize := cfg.RetentionBytes >= 0 && total-s.size >= cfg.RetentionBytes
		if byTime || bySize {
			total -= s.size
			return true
		}
		return false
	})
	if len(dead) > 0 {
		l.epochs.truncateFromStart(l.startOffset)
	}
	err := l.saveEpochsLocked()
	l.mu.Unlock()
	l.deleteSegments(dead)
	if len(dead) > 0 {
		l.pruneSnapshotsBelowStart()
	}
	return len(dead), err
}
