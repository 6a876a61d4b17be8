package segstore

import (
	"errors"
	iofs "io/fs"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// rebuildProducersLocked sets the producer state to what the log holds below
// its LEO: the newest readable snapshot at or below the LEO, then every
// batch from there on. Snapshots past the LEO (a torn tail cut by recovery,
// a truncation) describe batches that are gone and are deleted; so are
// unreadable ones, and the next older one is tried. With no snapshot the
// whole log is replayed (a log written before snapshots existed, once).
// Producers expired by now are left out. Called with mu held and no append
// in flight (open, TruncateTo); it reads the segments.
func (l *Log) rebuildProducersLocked() error {
	st := l.store
	l.prod.reset()
	offs, err := listSnapshots(st.fs, l.dir)
	if err != nil {
		return storageErr("list producer snapshots", err)
	}
	nowMs, maxAge := st.now().UnixMilli(), st.producerExpiration().Milliseconds()
	from, removed := l.segs[0].base, false
	drop := func(off int64) error {
		removed = true
		if err := st.fs.Remove(snapshotName(l.dir, off)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return storageErr("remove producer snapshot", err)
		}
		return nil
	}
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		if off > l.leo {
			if err := drop(off); err != nil {
				return err
			}
			continue
		}
		data, err := vfs.ReadFile(st.fs, snapshotName(l.dir, off))
		var entries []snapEntry
		if err == nil {
			entries, err = decodeSnapshot(data)
		}
		if err != nil {
			st.log.Warn("producer snapshot unreadable, using an older one or the log", "dir", l.dir, "offset", off, "err", err)
			if err := drop(off); err != nil {
				return err
			}
			continue
		}
		l.prod.load(entries)
		l.prod.snapAt, l.prod.haveSnap = off, true
		from = max(from, off)
		break
	}
	if removed {
		if err := st.fs.SyncDir(l.dir); err != nil {
			return storageErr("sync partition dir", err)
		}
	}
	if err := l.replayProducersLocked(from); err != nil {
		return err
	}
	l.prod.expire(nowMs, maxAge, l.leo)
	return nil
}

// replayProducersLocked applies every producer batch at or after offset
// from to the state, reading only batch headers. Batches emptied by
// compaction (no records, offsets kept) count like any other. Called with
// mu held.
func (l *Log) replayProducersLocked(from int64) error {
	for _, s := range l.segs {
		if s.next <= from || s.size == 0 {
			continue
		}
		var pos int64
		if from > s.base {
			p, _, found, err := s.find(from, s.size)
			if err != nil {
				return storageErr("producer state replay", err)
			}
			if !found {
				continue
			}
			pos = p
		}
		err := s.scan(pos, s.size, func(_ int64, h *batchHeader) bool {
			if h.ProducerID < 0 || h.LastOffset() < from || h.Attributes&attrControl != 0 {
				return true
			}
			l.prod.replay(h.ProducerID, h.ProducerEpoch, batchMeta{
				firstSeq: h.BaseSequence, lastSeq: incSeq(h.BaseSequence, h.LastOffDelta),
				firstOffset: h.BaseOffset, lastOffset: h.LastOffset(), maxTs: h.MaxTimestamp,
			})
			return true
		})
		if err != nil {
			return storageErr("producer state replay", err)
		}
	}
	return nil
}

// dropSnapshotsAboveLocked deletes the snapshots past offset before a
// truncation cuts the batches they describe: were the cut to come first, a
// crash could leave a snapshot at an offset the log reaches again with other
// batches. Called with mu held.
func (l *Log) dropSnapshotsAboveLocked(offset int64) error {
	err := removeSnapshots(l.store.fs, l.dir, func(off int64, _ bool) bool { return off > offset })
	if err != nil {
		return storageErr("remove producer snapshots", err)
	}
	return nil
}
