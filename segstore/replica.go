package segstore

import (
	"fmt"
)

// ErrUnexpectedOffset: a replicated append does not start at or after the
// follower's log end, or its batches' offsets do not increase. Kafka's
// UnexpectedAppendOffsetException; the fetcher must re-check its offset.
var ErrUnexpectedOffset = fmt.Errorf("%w: replicated batches out of order", ErrInvalidRecord)

// AppendReplica appends batches fetched from the partition's leader exactly
// as the leader holds them: offsets, partitionLeaderEpoch, timestamps
// (LogAppendTime included) and producer fields are kept, only the leader-
// epoch cache learns each batch's epoch (Kafka's appendAsFollower). The
// first batch must start at or after the log end and every batch must start
// after the previous one ended; gaps are legal (the leader's log may be
// compacted). Each batch is CRC-checked, but record counts may be below
// lastOffsetDelta+1 (compaction) and max.message.bytes is not applied: the
// leader accepted the batch, and a follower refusing it would stall
// replication for good. Idempotent producers' state is updated without the
// sequence rules, as when it is rebuilt from the log.
//
// It returns the last offset of the append. Errors: ErrCorruptBatch,
// ErrInvalidRecord (ErrUnexpectedOffset), ErrStorage, ErrClosed; then
// nothing was queued and done is never called. Otherwise done runs exactly
// once on the committer goroutine, as for Append. AppendReplica owns buf
// until done runs. Safe for concurrent use, though one follower fetcher per
// log is the intended caller.
func (l *Log) AppendReplica(buf []byte, done func(AppendResult)) (int64, error) {
	if len(buf) == 0 {
		return -1, invalid("no record batches")
	}
	var records int64
	var maxTs int64 = -1
	first, last := int64(-1), int64(-1)
	for rest := buf; len(rest) > 0; {
		h, size, err := validateReplicaBatch(rest)
		if err != nil {
			return -1, err
		}
		if first >= 0 && h.BaseOffset <= last {
			return -1, fmt.Errorf("%w: batch at %d after one ending at %d", ErrUnexpectedOffset, h.BaseOffset, last)
		}
		if first < 0 {
			first = h.BaseOffset
		}
		last = h.LastOffset()
		records += int64(h.RecordCount)
		maxTs = max(maxTs, h.MaxTimestamp)
		rest = rest[size:]
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return -1, l.err
	}
	if l.closed || l.store.closing.Load() {
		return -1, ErrClosed
	}
	if first < l.next {
		return -1, fmt.Errorf("%w: %s-%d: first offset %d is below the log end %d",
			ErrUnexpectedOffset, l.topic, l.partition, first, l.next)
	}
	l.prod.commit(l.leo)
	for rest := buf; len(rest) > 0; {
		h := parseHeader(rest)
		rest = rest[h.Size():]
		l.epochs.assign(h.LeaderEpoch, h.BaseOffset)
		if h.ProducerID >= 0 && h.Attributes&attrControl == 0 {
			// record, not replay: a failed write takes it back (undo records).
			l.prod.record(h.ProducerID, h.ProducerEpoch, batchMeta{
				firstSeq: h.BaseSequence, lastSeq: incSeq(h.BaseSequence, h.LastOffDelta),
				firstOffset: h.BaseOffset, lastOffset: h.LastOffset(), maxTs: h.MaxTimestamp,
			})
		}
	}
	// A gap before first (compaction on the leader) is skipped: the
	// segment's next offset simply jumps, as recovery accepts.
	l.next = last + 1
	l.inflight++
	l.c.enqueue(pending{log: l, buf: buf, base: first, last: last, maxTs: maxTs,
		records: records, appendTime: -1, done: done})
	return last, nil
}

// validateReplicaBatch checks what a replicated batch must satisfy: framing,
// magic 2, CRC32C, a sane record count and codec. It returns the header and
// the batch size.
func validateReplicaBatch(buf []byte) (batchHeader, int64, error) {
	if len(buf) < batchHeaderSize {
		return batchHeader{}, 0, corrupt("%d trailing bytes are not a batch", len(buf))
	}
	h := parseHeader(buf)
	size := h.Size()
	if size < batchHeaderSize || size > int64(len(buf)) {
		return h, 0, corrupt("batch claims %d bytes, %d remain", size, len(buf))
	}
	if h.Magic != 2 {
		return h, 0, corrupt("magic %d, only v2 record batches (magic 2) are accepted", h.Magic)
	}
	if got := crcOf(buf[:size]); got != h.CRC {
		return h, 0, corrupt("crc32c mismatch: header says %08x, data has %08x", h.CRC, got)
	}
	if h.BaseOffset < 0 || h.LastOffDelta < 0 || h.RecordCount < 0 || int64(h.RecordCount) > int64(h.LastOffDelta)+1 {
		return h, 0, invalid("batch at %d: lastOffsetDelta %d, %d records", h.BaseOffset, h.LastOffDelta, h.RecordCount)
	}
	if h.Compression() > 4 {
		return h, 0, invalid("unknown compression codec %d", h.Compression())
	}
	return h, size, nil
}
