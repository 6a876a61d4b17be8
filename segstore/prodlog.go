package segstore

import (
	"fmt"
	"sort"
	"time"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// Defaults of Kafka's broker settings for producer state.
const (
	// DefaultProducerIDExpiration is producer.id.expiration.ms.
	DefaultProducerIDExpiration = 24 * time.Hour
	// DefaultProducerIDExpirationCheckEvery is
	// producer.id.expiration.check.interval.ms.
	DefaultProducerIDExpirationCheckEvery = 10 * time.Minute
)

func (st *Store) producerExpiration() time.Duration {
	if d := st.cfg.ProducerIDExpiration; d > 0 {
		return d
	}
	return DefaultProducerIDExpiration
}

func (st *Store) producerExpiryCheckEvery() time.Duration {
	if d := st.cfg.ProducerIDExpirationCheckEvery; d > 0 {
		return d
	}
	return DefaultProducerIDExpirationCheckEvery
}

// trackProducersLocked checks every batch of an append from an idempotent
// producer against the producer state and records the accepted ones at the
// offsets they will get (from base on), all or nothing. If the append
// repeats batches the log already holds (a producer's retry), it reports the
// originals' offsets and records nothing. Called by Append with mu held,
// before offsets are stamped.
func (l *Log) trackProducersLocked(buf []byte, base, appendTime int64) (dup batchMeta, isDup bool, err error) {
	l.prod.commit(l.leo)
	mark := len(l.prod.undo)
	off := base
	ndup, nnew := 0, 0
	for rest := buf; len(rest) > 0; {
		h := parseHeader(rest)
		rest = rest[h.Size():]
		if h.Attributes&(attrTransactional|attrControl) != 0 {
			err = ErrTransactionalNotSupported
			break
		}
		if h.ProducerID == -1 {
			nnew++
			off += int64(h.RecordCount)
			continue
		}
		if h.ProducerID < 0 || h.ProducerEpoch < 0 || h.BaseSequence < 0 {
			err = invalid("producer id %d, epoch %d, base sequence %d: an idempotent batch needs all three non-negative",
				h.ProducerID, h.ProducerEpoch, h.BaseSequence)
			break
		}
		lastSeq := incSeq(h.BaseSequence, h.LastOffDelta)
		d, cerr := checkBatch(l.prod.get(h.ProducerID), h.ProducerEpoch, h.BaseSequence, lastSeq)
		if cerr != nil {
			err = l.producerErr(cerr, h.ProducerID, off)
			break
		}
		if d != nil {
			if ndup == 0 {
				dup = *d
			}
			dup.lastOffset, dup.maxTs = d.lastOffset, d.maxTs
			ndup++
			continue
		}
		nnew++
		ts := h.MaxTimestamp
		if appendTime >= 0 {
			ts = appendTime
		}
		l.prod.record(h.ProducerID, h.ProducerEpoch, batchMeta{firstSeq: h.BaseSequence, lastSeq: lastSeq,
			firstOffset: off, lastOffset: off + int64(h.LastOffDelta), maxTs: ts})
		off += int64(h.RecordCount)
	}
	if err == nil && ndup > 0 && nnew > 0 {
		// Kafka answers such a request with the duplicate's offsets and drops
		// the rest unwritten; refusing loses nothing. Clients send one batch
		// per partition, so only a hand-made request gets here.
		err = invalid("%d batches repeat already written ones and %d are new: send them in separate requests", ndup, nnew)
	}
	if err != nil {
		l.prod.rollbackTo(mark)
		return batchMeta{}, false, err
	}
	return dup, ndup > 0, nil
}

func (l *Log) producerErr(err error, pid, offset int64) error {
	return fmt.Errorf("%s-%d: producer id %d at offset %d: %w", l.topic, l.partition, pid, offset, err)
}

// queueDuplicateLocked answers an append that repeats batches in the log:
// nothing is written, but done waits behind the log's queued appends — the
// original may still be among them — and fails if they fail. The empty
// write sits at the next offset, so the committer's accounting is unchanged.
// Called with mu held.
func (l *Log) queueDuplicateLocked(d batchMeta, appendTime int64, done func(AppendResult)) int64 {
	ts := int64(-1)
	if appendTime >= 0 {
		ts = d.maxTs // the LogAppendTime stamped into the original
	}
	l.inflight++
	l.c.enqueue(pending{log: l, base: l.next, last: l.next - 1, appendTime: -1, done: func(r AppendResult) {
		r.BaseOffset, r.LastOffset = d.firstOffset, d.lastOffset
		if r.Err == nil {
			r.LogAppendTime = ts
		}
		done(r)
	}})
	return d.firstOffset
}

// ProducerBatch is the metadata of one batch a producer wrote.
type ProducerBatch struct {
	FirstSequence, LastSequence int32
	FirstOffset, LastOffset     int64
	MaxTimestamp                int64
}

// ProducerState is one idempotent producer's state in a partition.
type ProducerState struct {
	ID            int64
	Epoch         int16
	LastTimestamp int64
	// Batches are its last batches (at most 5), oldest first: the ones a
	// retry is recognised by.
	Batches []ProducerBatch
}

// Producers returns the partition's producer state, sorted by id, including
// appends not yet completed. Safe for concurrent use.
func (l *Log) Producers() []ProducerState {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ProducerState, 0, len(l.prod.m))
	for pid, e := range l.prod.m {
		p := ProducerState{ID: pid, Epoch: e.epoch, LastTimestamp: e.lastTs}
		for _, b := range e.batches[:e.n] {
			p.Batches = append(p.Batches, ProducerBatch{FirstSequence: b.firstSeq, LastSequence: b.lastSeq,
				FirstOffset: b.firstOffset, LastOffset: b.lastOffset, MaxTimestamp: b.maxTs})
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ExpireProducers forgets producers whose last batch is older than
// producer.id.expiration.ms at now and returns how many. Safe for
// concurrent use.
func (l *Log) ExpireProducers(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prod.expire(now.UnixMilli(), l.store.producerExpiration().Milliseconds(), l.leo)
}

// ExpireProducers applies producer id expiry to every log now; the
// background loop calls it every producer.id.expiration.check.interval.ms.
// Safe for concurrent use.
func (st *Store) ExpireProducers() {
	now := st.now()
	for _, l := range st.Logs() {
		if n := l.ExpireProducers(now); n > 0 {
			st.log.Debug("expired producer ids", "dir", l.dir, "producers", n)
		}
	}
}

// writeProducerSnapshot writes the producer state as of offset at (every
// append below at completed; later ones may be in flight) and prunes the
// snapshots no longer needed: those of all but the last two segments, never
// the newest. A failure only costs a longer replay at the next open, so it is
// logged, not returned. Not on any lock; the committer calls it when a
// segment rolls, Close at the end.
func (l *Log) writeProducerSnapshot(at int64) {
	l.mu.Lock()
	if l.closed || len(l.segs) == 0 {
		l.mu.Unlock()
		return
	}
	data := encodeSnapshot(l.prod.snapshotEntriesAt(at))
	keepFrom := l.segs[max(len(l.segs)-2, 0)].base
	l.mu.Unlock()
	fs := l.store.fs
	if err := vfs.WriteFileAtomic(fs, snapshotName(l.dir, at), data); err != nil {
		l.store.log.Warn("write producer snapshot", "dir", l.dir, "offset", at, "err", err)
		return
	}
	l.mu.Lock()
	if !l.prod.haveSnap || at >= l.prod.snapAt {
		l.prod.snapAt, l.prod.haveSnap = at, true
	}
	l.mu.Unlock()
	err := removeSnapshots(fs, l.dir, func(off int64, newest bool) bool { return off < keepFrom && !newest })
	if err != nil {
		l.store.log.Warn("prune producer snapshots", "dir", l.dir, "err", err)
	}
}

// snapshotAtClose writes a snapshot at the LEO unless the newest one is
// already there, so the next open replays nothing. Close calls it once no
// append is in flight.
func (l *Log) snapshotAtClose() {
	l.mu.Lock()
	leo, skip := l.leo, l.prod.haveSnap && l.prod.snapAt == l.leo
	l.mu.Unlock()
	if !skip {
		l.writeProducerSnapshot(leo)
	}
}

// pruneSnapshotsBelowStart deletes the snapshots of segments retention or
// DeleteRecords removed. The one at the first kept segment stays even when
// the log start is past it: the producers of the deleted records stay too
// (only expiry removes producers), and a rebuild must find them. The newest
// snapshot always stays (it may sit below the first kept segment when a
// roll's snapshot failed to write).
func (l *Log) pruneSnapshotsBelowStart() {
	l.mu.Lock()
	if l.closed || len(l.segs) == 0 {
		l.mu.Unlock()
		return
	}
	first := l.segs[0].base
	l.mu.Unlock()
	if err := removeSnapshots(l.store.fs, l.dir, func(off int64, newest bool) bool { return off < first && !newest }); err != nil {
		l.store.log.Warn("prune producer snapshots", "dir", l.dir, "err", err)
	}
}
