package segstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// Errors a Log returns besides invalid input.
var (
	// ErrStorage is wrapped by every I/O failure; the node answers
	// KAFKA_STORAGE_ERROR. After a failed fsync or write (other than ENOSPC)
	// the log keeps returning it: its state on disk is no longer known.
	ErrStorage = errors.New("storage error")
	// ErrRecordTooLarge: a batch exceeds max.message.bytes (MESSAGE_TOO_LARGE).
	ErrRecordTooLarge = errors.New("record batch larger than max.message.bytes")
	// ErrOffsetOutOfRange: a read below the log start or past the bound.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrClosed: the log or store was closed or deleted.
	ErrClosed = errors.New("log closed")
	// ErrBusy: an operation that needs no appends in flight found some.
	ErrBusy = errors.New("appends in flight")
)

func storageErr(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrStorage, op, err)
}

// AppendResult is what an append's completion reports.
type AppendResult struct {
	BaseOffset int64
	LastOffset int64
	// LogAppendTime is the broker time stamped into the batches, or -1 for
	// CreateTime topics.
	LogAppendTime int64
	// Err is nil when the batches are written (and, under FlushAck, synced).
	Err error
}

// Log is one partition's log.
//
// Concurrency: every exported method is safe for concurrent use. Append never
// waits for I/O: it validates and assigns offsets under mu and queues the
// write for the Store's committer goroutine, which runs done. Read and the
// lookups take mu only to pick a segment, then read outside it. Lock order:
// Log.mu before committer.qmu.
type Log struct {
	store     *Store
	topic     string
	partition int32
	dir       string

	mu  sync.Mutex
	cfg LogConfig
	// segs is ordered by base offset; the last one is active.
	segs []*segment
	// next is the offset the next Append assigns; leo is the end of completed
	// writes (what readers may see); recoveryPoint is the end of synced data.
	next, leo, recoveryPoint int64
	startOffset              int64
	epochs                   epochCache
	// err is sticky: set after a failed fsync or a write error other than ENOSPC.
	err      error
	inflight int  // queued appends not yet completed
	closed   bool // deleted or store closed
	// unflushed and lastFlush drive FlushInterval.
	unflushed int64
	lastFlush time.Time

	// cidx is the committer's scratch slot for this log in a round
	// (committer goroutine only).
	cidx int
	// c is the committer that writes this log: set before the log is
	// published and never changed (shard.go).
	c *committer
	// prod is the idempotent producers' state (producers.go).
	prod producerState
	// cl is the log cleaner's state (clean.go).
	cl logClean
	// cold: drop synced pages from the page cache (coldpages.go).
	cold bool
}

// Topic is the log's topic. Safe for concurrent use.
func (l *Log) Topic() string { return l.topic }

// Partition is the log's partition. Safe for concurrent use.
func (l *Log) Partition() int32 { return l.partition }

// Dir is the partition directory. Safe for concurrent use.
func (l *Log) Dir() string { return l.dir }

// Append validates buf (one or more v2 RecordBatches, as a Produce request
// carries them), assigns offsets by rewriting each batch's baseOffset in place,
// stamps the leader epoch (and LogAppendTime where the topic asks for it), and
// queues the write. It returns the base offset, or an error — ErrCorruptBatch,
// ErrInvalidRecord, ErrRecordTooLarge, ErrStorage, ErrClosed, and for
// idempotent producers ErrOutOfOrderSequence, ErrInvalidProducerEpoch,
// ErrTransactionalNotSupported — in which case nothing was queued and done
// is never called. An append that repeats an idempotent producer's batches
// writes nothing and reports the originals' offsets, once they are written.
//
// On success done is called exactly once, from the committer goroutine, when
// the write completed (and was synced, under FlushAck) or failed; a failed
// write leaves nothing of it visible. done must not block. Append owns buf
// until done runs. Safe for concurrent use; appends to one log complete in
// the order they were assigned offsets.
func (l *Log) Append(buf []byte, leaderEpoch int32, done func(AppendResult)) (int64, error) {
	var records int64
	var maxTs int64 = -1
	err := splitBatches(buf, func(b []byte, h batchHeader) error {
		records += int64(h.RecordCount)
		maxTs = max(maxTs, h.MaxTimestamp)
		return nil
	})
	if err != nil {
		return -1, err
	}
	if l.cl.compact.Load() {
		if err := requireKeys(buf, l.topic, l.partition); err != nil {
			return -1, err
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return -1, l.err
	}
	if l.closed || l.store.closing.Load() {
		return -1, ErrClosed
	}
	if int64(len(buf)) > l.cfg.MaxMessageBytes && !singleBatchFits(buf, l.cfg.MaxMessageBytes) {
		return -1, fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, len(buf), l.cfg.MaxMessageBytes)
	}
	base := l.next
	appendTime := int64(-1)
	if l.cfg.TimestampType == LogAppendTime {
		appendTime = l.store.now().UnixMilli()
		maxTs = appendTime
	}
	if dup, ok, err := l.trackProducersLocked(buf, base, appendTime); err != nil {
		return -1, err
	} else if ok {
		return l.queueDuplicateLocked(dup, appendTime, done), nil
	}
	off := base
	for rest := buf; len(rest) > 0; {
		h := parseHeader(rest)
		b := rest[:h.Size()]
		stampOffsets(b, off, leaderEpoch)
		if appendTime >= 0 {
			stampLogAppendTime(b, appendTime)
		}
		off += int64(h.RecordCount)
		rest = rest[h.Size():]
	}
	l.epochs.assign(leaderEpoch, base)
	l.next = off
	l.inflight++
	l.c.enqueue(pending{log: l, buf: buf, base: base, last: off - 1, maxTs: maxTs,
		records: records, appendTime: appendTime, done: done})
	return base, nil
}

// singleBatchFits reports whether every batch in buf is within limit: Kafka's
// max.message.bytes bounds each batch, not the whole request.
func singleBatchFits(buf []byte, limit int64) bool {
	for len(buf) > 0 {
		h := parseHeader(buf)
		if h.Size() > limit {
			return false
		}
		buf = buf[h.Size():]
	}
	return true
}

// Offsets is a consistent view of a log's offsets.
type Offsets struct {
	// Start is the log start offset (retention and DeleteRecords move it).
	Start int64
	// End is the log end offset (LEO): one past the last completed write.
	End int64
	// Durable is the end of fdatasynced data (the recovery point).
	Durable int64
}

// Offsets returns the log's offsets. Safe for concurrent use.
func (l *Log) Offsets() Offsets {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Offsets{Start: l.startOffset, End: l.leo, Durable: l.recoveryPoint}
}

// Err returns the log's sticky error, if any. Safe for concurrent use.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// SetConfig replaces the log's configuration (AlterConfigs). It applies to
// later appends, rolls and retention runs. Safe for concurrent use.
func (l *Log) SetConfig(c LogConfig) {
	l.mu.Lock()
	l.cfg = c.normalized()
	l.noteConfigLocked()
	l.mu.Unlock()
}

// Config returns the log's configuration. Safe for concurrent use.
func (l *Log) Config() LogConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Size is the bytes held in the log's segments. Safe for concurrent use.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// Epochs returns a copy of the leader-epoch cache. Safe for concurrent use.
func (l *Log) Epochs() []EpochEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]EpochEntry(nil), l.epochs.entries...)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch at or
// below epoch and the offset where it ended (the LEO for the current epoch);
// (-1, -1) when epoch is older than the log's history. Safe for concurrent use.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epochs.endOffsetFor(epoch, l.leo)
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

func (l *Log) epochPath() string { return filepath.Join(l.dir, "leader-epoch-checkpoint") }

// saveEpochsLocked persists the epoch cache if it changed. Called with mu held.
func (l *Log) saveEpochsLocked() error {
	if !l.epochs.dirty {
		return nil
	}
	if err := l.epochs.save(l.store.fs, l.epochPath()); err != nil {
		return storageErr("write leader-epoch-checkpoint", err)
	}
	return nil
}
