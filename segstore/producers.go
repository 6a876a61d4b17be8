package segstore

import (
	"errors"
	"fmt"
	"math"
)

// Idempotent producers (KIP-98), Kafka's ProducerStateManager: per producer
// id the epoch and the metadata of its last five batches, so a retried batch
// is recognised (and answered with the offsets it got the first time) and a
// lost or reordered one is refused. Sequences run per partition, from 0,
// wrapping from MaxInt32 to 0.

// Errors for produce requests that break the idempotent-producer rules.
var (
	// ErrOutOfOrderSequence: the batch's first sequence does not follow the
	// producer's last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrInvalidProducerEpoch: the batch's epoch is older than the one the
	// partition knows for the producer id (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	// ErrTransactionalNotSupported: a transactional or control batch from a
	// client; sluice has no transaction coordinator.
	ErrTransactionalNotSupported = errors.New("transactional produce is not supported by this broker")
)

// maxCachedBatches is Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN: the
// most batches a producer may have in flight with one broker.
const maxCachedBatches = 5

// batchMeta is what a producer's batch leaves behind.
type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	maxTs                   int64
}

// producerEntry is one producer id's state in a partition.
type producerEntry struct {
	epoch   int16
	n       int8 // batches[:n] are valid, oldest first
	batches [maxCachedBatches]batchMeta
	lastTs  int64 // max timestamp of the last batch: what expiry counts from
}

// lastSeq is the sequence of the producer's last record, -1 if none is known.
func (e *producerEntry) lastSeq() int32 {
	if e.n == 0 {
		return -1
	}
	return e.batches[e.n-1].lastSeq
}

// update adds a batch written (or replayed) for the producer: a new epoch
// forgets the old epoch's batches; the cache keeps the last five.
func (e *producerEntry) update(epoch int16, m batchMeta) {
	if epoch != e.epoch {
		e.epoch, e.n = epoch, 0
	}
	if int(e.n) == maxCachedBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = m
	e.n++
	e.lastTs = m.maxTs
}

// incSeq is seq+delta with Kafka's wrap from MaxInt32 to 0.
func incSeq(seq, delta int32) int32 {
	if seq > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - seq) - 1
	}
	return seq + delta
}

// decSeq is seq-delta with the same wrap.
func decSeq(seq, delta int32) int32 {
	if seq < delta {
		return math.MaxInt32 - (delta - seq) + 1
	}
	return seq - delta
}

// inSequence says whether next follows last.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// checkBatch applies Kafka's rules (ProducerAppendInfo) to a batch of a
// producer whose entry is e (nil: unknown producer). It returns the cached
// batch a duplicate repeats, or an error wrapping ErrInvalidProducerEpoch or
// ErrOutOfOrderSequence. Pure: it changes nothing.
func checkBatch(e *producerEntry, epoch int16, firstSeq, lastSeq int32) (*batchMeta, error) {
	if e == nil {
		// No state: a new producer, or one whose batches were all deleted
		// (retention, DeleteRecords) or expired. Any sequence is accepted
		// (KIP-360), or its producer could never write here again.
		return nil, nil
	}
	if epoch < e.epoch {
		return nil, fmt.Errorf("%w: epoch %d is older than the partition's latest epoch %d for this producer id",
			ErrInvalidProducerEpoch, epoch, e.epoch)
	}
	if epoch != e.epoch {
		if firstSeq != 0 {
			return nil, fmt.Errorf("%w: first sequence %d for new epoch %d (the epoch before was %d); a new epoch starts at 0",
				ErrOutOfOrderSequence, firstSeq, epoch, e.epoch)
		}
		return nil, nil
	}
	for i := int8(0); i < e.n; i++ {
		if b := &e.batches[i]; b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b, nil
		}
	}
	if !inSequence(e.lastSeq(), firstSeq) {
		return nil, fmt.Errorf("%w: batch sequences %d-%d, the producer's last sequence is %d (epoch %d)",
			ErrOutOfOrderSequence, firstSeq, lastSeq, e.lastSeq(), epoch)
	}
	return nil, nil
}

// producerUndo records the entry a not-yet-durable append replaced, so a
// failed write can be taken back: the retry must not look like a duplicate
// of a batch that never reached the log.
type producerUndo struct {
	offset  int64 // first offset of the batch that made the change
	pid     int64
	existed bool
	prev    producerEntry
}

// producerState is a partition's producers. Guarded by the Log's mu.
type producerState struct {
	m map[int64]*producerEntry
	// undo holds the changes of appends at or past the LEO, in offset
	// order; entries below the LEO are durable and are dropped lazily.
	undo []producerUndo
	// snapAt is the offset of the newest snapshot file, valid if haveSnap.
	snapAt   int64
	haveSnap bool
}

func (ps *producerState) get(pid int64) *producerEntry {
	return ps.m[pid] // nil map reads are fine
}

// record applies a checked batch at offset m.firstOffset, remembering how to
// take it back.
func (ps *producerState) record(pid int64, epoch int16, m batchMeta) {
	e := ps.m[pid]
	u := producerUndo{offset: m.firstOffset, pid: pid, existed: e != nil}
	if e == nil {
		if ps.m == nil {
			ps.m = map[int64]*producerEntry{}
		}
		e = &producerEntry{epoch: epoch}
		ps.m[pid] = e
	} else {
		u.prev = *e
	}
	ps.undo = append(ps.undo, u)
	e.update(epoch, m)
}

// replay applies a batch read back from the log, without the rules: what is
// in the log was accepted when it was written.
func (ps *producerState) replay(pid int64, epoch int16, m batchMeta) {
	e := ps.m[pid]
	if e == nil {
		if ps.m == nil {
			ps.m = map[int64]*producerEntry{}
		}
		e = &producerEntry{epoch: epoch}
		ps.m[pid] = e
	}
	e.update(epoch, m)
}

// commit forgets undo records of batches below end (they are durable).
func (ps *producerState) commit(end int64) {
	k := 0
	for k < len(ps.undo) && ps.undo[k].offset < end {
		k++
	}
	if k == len(ps.undo) {
		ps.undo = ps.undo[:0]
	} else if k > 0 {
		ps.undo = ps.undo[k:]
	}
}

// rollback takes back every change made at or after offset, newest first.
func (ps *producerState) rollback(offset int64) {
	for len(ps.undo) > 0 {
		u := &ps.undo[len(ps.undo)-1]
		if u.offset < offset {
			return
		}
		ps.undoOne(u)
		ps.undo = ps.undo[:len(ps.undo)-1]
	}
}

// rollbackTo takes back the changes recorded after the first mark ones
// (an append refused part way through its batches).
func (ps *producerState) rollbackTo(mark int) {
	for len(ps.undo) > mark {
		ps.undoOne(&ps.undo[len(ps.undo)-1])
		ps.undo = ps.undo[:len(ps.undo)-1]
	}
}

func (ps *producerState) undoOne(u *producerUndo) {
	if !u.existed {
		delete(ps.m, u.pid)
		return
	}
	e := ps.m[u.pid]
	if e == nil { // expired meanwhile
		e = &producerEntry{}
		ps.m[u.pid] = e
	}
	*e = u.prev
}

// reset forgets everything (before a rebuild).
func (ps *producerState) reset() {
	ps.m, ps.undo, ps.haveSnap = nil, nil, false
}

// expire removes producers whose last timestamp is at least maxAge old,
// except those with a batch at or past inflightFrom (not yet durable): a
// failed write would bring them back through the undo records. It returns
// how many it removed.
func (ps *producerState) expire(nowMs, maxAgeMs, inflightFrom int64) int {
	n := 0
	for pid, e := range ps.m {
		if e.n > 0 && e.batches[e.n-1].lastOffset >= inflightFrom {
			continue
		}
		if nowMs-e.lastTs >= maxAgeMs {
			delete(ps.m, pid)
			n++
		}
	}
	return n
}
