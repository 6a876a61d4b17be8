package segstore

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Log compaction (cleanup.policy=compact), Kafka's log cleaner: one
// goroutine per Store picks the compacted log with the highest dirty ratio
// — bytes not yet cleaned over all cleanable bytes, counting closed
// segments only, and only those whose records are all older than
// min.compaction.lag.ms — once it reaches min.cleanable.dirty.ratio (or at
// once when the oldest dirty segment is older than max.compaction.lag.ms,
// or when a kept tombstone's time has come), and runs a pass over it
// (clean_pass.go). Offsets never change; the cleaned log has gaps.
//
// Locks: a pass holds the log's cl.files for its whole length and Log.mu
// only for moments (to read the segment list, to swap it); file I/O is done
// without Log.mu, so appends and fetches never wait for the cleaner.

// logClean is a log's cleaner state.
type logClean struct {
	// Guarded by Log.mu.
	cleanedTo   int64 // the cleaner checkpoint: the log is clean below it
	tombHorizon int64 // unix ms when a kept tombstone may go; 0: none known
	uncleanable bool  // a pass met corrupt data: skipped until reopened

	// files is held by a pass and by everything else that removes or
	// renames segment files, taken before Log.mu.
	files sync.Mutex
	// abort counts goroutines waiting for files; a pass stops at its next
	// batch while it is non-zero.
	abort atomic.Int32
	// compact mirrors cfg.Cleanup.Compact() for Append, which checks
	// record keys before it takes Log.mu.
	compact atomic.Bool
}

// lockFiles takes l.cl.files, stopping a pass in progress rather than
// waiting for it to finish.
func (l *Log) lockFiles() {
	l.cl.abort.Add(1)
	l.cl.files.Lock()
	l.cl.abort.Add(-1)
}

// CleanedTo is the log's cleaner checkpoint: below it the log holds only
// the latest record of each key (and tombstones not yet expired). Safe for
// concurrent use.
func (l *Log) CleanedTo() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cl.cleanedTo
}

// cleaner is a Store's log cleaner.
type cleaner struct {
	st  *Store
	cfg CleanerConfig

	// mu makes passes one at a time and guards the buffers they share.
	mu sync.Mutex
	m  offsetMap
	rd segReader
	wr segWriter
	bb batchBuilder

	stopping atomic.Bool
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}

	runs, bytesRead, bytesWritten, removed atomic.Int64
}

// startCleaner makes the cleaner and, unless disabled, its goroutine.
func (st *Store) startCleaner() {
	c := &cleaner{st: st, cfg: st.cfg.Cleaner.normalized(), stop: make(chan struct{}), done: make(chan struct{})}
	st.cleaner = c
	if c.cfg.Disable {
		close(c.done)
		return
	}
	go c.loop()
}

// loop cleans as long as some log needs it, then waits log.cleaner.backoff.ms.
func (c *cleaner) loop() {
	defer close(c.done)
	t := time.NewTimer(c.cfg.Backoff)
	defer t.Stop()
	for {
		_, cleaned, err := c.st.Clean()
		switch {
		case errors.Is(err, ErrClosed):
			return
		case err != nil && !errors.Is(err, ErrCleanAborted):
			c.st.log.Error("log cleaner", "err", err)
		}
		if cleaned {
			select {
			case <-c.stop:
				return
			default:
				continue
			}
		}
		t.Reset(c.cfg.Backoff)
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// stopCleaner stops the cleaner goroutine and waits for any pass, which
// aborts at its next batch (Store.closing is set).
func (st *Store) stopCleaner() {
	c := st.cleaner
	c.stopping.Store(true)
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	c.mu.Lock()
	c.mu.Unlock() //nolint:staticcheck // waits out a pass started by Clean
}

// Clean runs one cleaning pass now, on the compacted log that needs it most
// (see the rules above), and reports whether it cleaned one. Passes run one
// at a time. Safe for concurrent use.
func (st *Store) Clean() (CleanStats, bool, error) {
	c := st.cleaner
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.closing.Load() || c.stopping.Load() {
		return CleanStats{}, false, ErrClosed
	}
	nowMs := st.now().UnixMilli()
	var best *Log
	var bestScore float64
	for _, l := range st.Logs() {
		l.mu.Lock()
		r, ok := l.cleanRangeLocked(nowMs)
		l.mu.Unlock()
		if !ok || !r.eligible {
			continue
		}
		if best == nil || r.score > bestScore {
			best, bestScore = l, r.score
		}
	}
	if best == nil {
		return CleanStats{}, false, nil
	}
	stats, cleaned, err := c.cleanLog(best)
	if err != nil {
		if errors.Is(err, ErrCorruptBatch) || errors.Is(err, ErrInvalidRecord) || !errors.Is(err, ErrStorage) && !errors.Is(err, ErrCleanAborted) {
			// Corrupt data, or a dedupe buffer too small for one batch:
			// a retry would fail the same way.
			best.mu.Lock()
			best.cl.uncleanable = true
			best.mu.Unlock()
			st.log.Error("log cleaner: log marked uncleanable until restart", "dir", best.dir, "err", err)
		}
		return stats, false, err
	}
	if cleaned {
		c.runs.Add(1)
		c.bytesRead.Add(stats.BytesRead)
		c.bytesWritten.Add(stats.BytesWritten)
		c.removed.Add(stats.RecordsRemoved)
		if c.cfg.OnClean != nil {
			c.cfg.OnClean(stats)
		}
	}
	return stats, cleaned, nil
}

// cleanRange is what a log offers the cleaner.
type cleanRange struct {
	firstDirty  int64 // where the dirty range starts: the checkpoint
	uncleanable int64 // where it ends: the active segment, or the first too young
	eligible    bool
	score       float64 // the dirty ratio; tombstone-only work scores 0
}

// cleanRangeLocked sizes up l for a pass at nowMs. Called with l.mu held.
func (l *Log) cleanRangeLocked(nowMs int64) (cleanRange, bool) {
	cfg := &l.cfg
	if l.closed || l.err != nil || !cfg.Cleanup.Compact() || l.cl.uncleanable || len(l.segs) < 2 {
		return cleanRange{}, false
	}
	closed := l.segs[:len(l.segs)-1]
	active := l.active()
	r := cleanRange{firstDirty: min(max(l.cl.cleanedTo, l.startOffset), active.base), uncleanable: active.base}
	var cleanBytes, dirtyBytes int64
	mustClean, first := false, true
	for _, s := range closed {
		if s.next <= r.firstDirty {
			cleanBytes += s.size
			continue
		}
		if cfg.MinCompactionLagMs > 0 && s.maxTs > nowMs-cfg.MinCompactionLagMs.Milliseconds() {
			r.uncleanable = max(s.base, r.firstDirty)
			break
		}
		if first && s.firstTs >= 0 && nowMs-s.firstTs > cfg.MaxCompactionLagMs.Milliseconds() {
			mustClean = true
		}
		first = false
		dirtyBytes += s.size
	}
	if dirtyBytes > 0 {
		r.score = float64(dirtyBytes) / float64(cleanBytes+dirtyBytes)
		r.eligible = mustClean || r.score >= cfg.MinCleanableRatio
	}
	if h := l.cl.tombHorizon; h > 0 && nowMs >= h {
		r.eligible = true
	}
	return r, true
}

// cleanLog runs a pass over l if it still needs one.
func (c *cleaner) cleanLog(l *Log) (CleanStats, bool, error) {
	l.cl.files.Lock()
	defer l.cl.files.Unlock()
	start := time.Now()
	p := &pass{c: c, l: l, nowMs: c.st.now().UnixMilli()}
	l.mu.Lock()
	r, ok := l.cleanRangeLocked(p.nowMs)
	if !ok || !r.eligible {
		l.mu.Unlock()
		return CleanStats{}, false, nil
	}
	p.cfg = l.cfg
	var segs []*segment
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.base >= r.uncleanable {
			break
		}
		s.acquire() // the files stay open whatever happens to the log
		segs = append(segs, s)
	}
	l.mu.Unlock()
	defer func() {
		for _, s := range segs {
			s.release()
		}
	}()
	p.stats = CleanStats{Topic: l.topic, Partition: l.partition, FirstDirty: r.firstDirty}

	mapEnd, err := p.buildMap(segs, r.firstDirty, r.uncleanable)
	if err != nil {
		return p.stats, false, err
	}
	var todo []*segment
	for _, s := range segs {
		if s.base < mapEnd {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		l.mu.Lock()
		l.cl.tombHorizon = 0 // whatever held the tombstones is gone
		l.mu.Unlock()
		return p.stats, false, nil
	}
	lastOf, err := lastProducerBatches(todo)
	if err != nil {
		return p.stats, false, storageErr("cleaner: scan producer batches", err)
	}
	for _, g := range groupBySize(todo, p.cfg.SegmentBytes) {
		cs, err := p.cleanGroup(g, lastOf, mapEnd)
		if err != nil {
			return p.stats, false, err
		}
		if err := p.swapIn(g, cs); err != nil {
			return p.stats, false, err
		}
		p.stats.SegmentsIn += len(g)
		p.stats.SegmentsOut++
	}
	l.mu.Lock()
	l.cl.cleanedTo = max(l.cl.cleanedTo, mapEnd)
	l.cl.tombHorizon = p.horizon
	l.mu.Unlock()
	p.stats.End = mapEnd
	p.stats.Took = time.Since(start)
	if err := c.st.saveCleanerOffsets(); err != nil {
		// The pass stands; a stale checkpoint only means cleaning again.
		c.st.log.Warn("write cleaner-offset-checkpoint", "err", err)
	}
	return p.stats, true, nil
}

// noteConfigLocked records what Append needs of a new configuration
// without taking mu. Called with l.mu held (or before l is published).
func (l *Log) noteConfigLocked() {
	l.cl.compact.Store(l.cfg.Cleanup.Compact())
}
