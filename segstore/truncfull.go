package segstore

import (
	"slices"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// TruncateFullyAndStartAt empties the log and restarts it at offset, Kafka's
// UnifiedLog.truncateFullyAndStartAt: for a follower whose whole log lies
// below its leader's log start (it was down longer than retention, or
// DeleteRecords moved the leader's start past it). Every segment goes; the
// log start, LEO and recovery point become offset; the leader-epoch cache and
// the idempotent producers' state (and their snapshots) are cleared; the
// cleaner checkpoint is cut to offset if it was past it. Reads below offset
// then fail with ErrOffsetOutOfRange and appends (AppendReplica) continue at
// offset. It needs no appends in flight (ErrBusy otherwise).
//
// Crash safety: the new, empty segment at offset is created and synced
// before the old segments are removed (segments reaching offset, which only
// exist when offset is below the log end, go first, newest first), so a
// crash at any step leaves either a prefix of the old log, or old segments
// below offset plus the empty segment at offset — a gap, which recovery
// accepts as it accepts compaction's, with the LEO at offset. The log start
// and recovery point are checkpointed before the old segments are removed,
// so once any is gone, a restart starts the log at offset.
//
// A storage error while the segments change makes the log's error sticky
// (KAFKA_STORAGE_ERROR); the disk then holds one of the states above. Safe
// for concurrent use.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return invalid("truncate fully: negative start offset %d", offset)
	}
	l.lockFiles() // a cleaning pass stops: every segment goes
	defer l.cl.files.Unlock()
	dead, err := l.restartAtLocked(offset)
	if err != nil {
		return err
	}
	// The new start and recovery point reach disk before any old segment
	// goes: a restart then neither serves what is left of the old log
	// below offset nor rescans it. Checkpoint takes l.mu itself.
	err = l.store.Checkpoint()
	l.mu.Lock()
	if serr := l.saveEpochsLocked(); err == nil {
		err = serr
	}
	l.mu.Unlock()
	// A failed checkpoint is reported but the old segments go anyway:
	// with them gone, recovery starts the log at the first segment's base,
	// offset, whatever the checkpoint says.
	l.deleteSegments(dead)
	return err
}

// restartAtLocked is TruncateFullyAndStartAt's part under l.mu: it makes
// the new segment, swaps it in and returns the old segments still to
// remove (all below offset). Called with l.cl.files held.
func (l *Log) restartAtLocked(offset int64) ([]*segment, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	if l.inflight > 0 {
		return nil, ErrBusy
	}
	fs := l.store.fs
	// Segments holding offsets at or past offset (or named by it) would
	// overlap the new one, and recovery would keep them and drop it: they go
	// first, newest first, so a crash leaves a prefix of the old log.
	keep := len(l.segs)
	for keep > 0 && (l.segs[keep-1].next > offset || l.segs[keep-1].base >= offset) {
		keep--
		if err := l.segs[keep].remove(fs); err != nil {
			l.err = storageErr("truncate fully: remove segment", err)
			return nil, l.err
		}
	}
	if keep > 0 {
		// The old active segment, if it survives until the cleanup below, is
		// no longer last once the new one exists: recovery trusts its size.
		old := l.segs[keep-1]
		err := old.cutPaddingLocked()
		old.closeDirectLocked()
		if err != nil {
			l.err = err
			return nil, l.err
		}
	}
	ns, err := createSegment(fs, l.dir, offset) // synced with its directory
	if err != nil {
		l.err = storageErr("truncate fully: create segment", err)
		return nil, l.err
	}
	// No snapshot describes the new log but an empty one at offset: written
	// now, a restart over leftovers of the old log starts with no producers.
	err = removeSnapshots(fs, l.dir, func(int64, bool) bool { return true })
	if err == nil {
		err = vfs.WriteFileAtomic(fs, snapshotName(l.dir, offset), encodeSnapshot(nil))
	}
	if err != nil {
		ns.release()
		_ = ns.remove(fs)
		l.err = storageErr("truncate fully: producer snapshots", err)
		return nil, l.err
	}
	for _, s := range l.segs[keep:] {
		s.release()
	}
	dead := slices.Clone(l.segs[:keep])
	l.segs = []*segment{ns}
	l.startOffset, l.leo, l.next, l.recoveryPoint = offset, offset, offset, offset
	l.unflushed = 0
	l.epochs = epochCache{dirty: true} // saved after the checkpoint
	l.prod.reset()
	l.prod.snapAt, l.prod.haveSnap = offset, true
	l.cl.cleanedTo = min(l.cl.cleanedTo, offset)
	l.cl.tombHorizon = 0
	return dead, nil
}
