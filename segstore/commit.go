package segstore

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"golang.org/x/sys/unix"
)

// pending is one queued Append.
type pending struct {
	log        *Log
	buf        []byte
	base, last int64
	maxTs      int64
	records    int64
	appendTime int64
	done       func(AppendResult)
	err        error // set by the committer when it fails the append
}

// group is one log's share of a round: which pending appends it writes and
// where its ops sit.
type group struct {
	log     *Log
	items   []int // indexes into the round's work
	pos     int64 // file position of the write
	seg     *segment
	writeOp int // index in ops, -1 if none
	syncOp  int // index in ops, -1 if none
	// stage is the staged block-aligned image of a direct write, nil for a
	// write through the page cache (direct.go); end is where its data ends.
	stage []byte
	end   int64
}

// committer is group commit: one goroutine takes every append queued since
// its last round and writes them in one engine submission — per log one
// vectored write at the end of its active segment, linked to an fdatasync
// when the flush policy asks — so N partitions' appends cost one
// io_uring_enter and at most one fdatasync per file, however many producers
// are waiting. While a round is on disk, the next one queues up, so the
// batch grows with load.
type committer struct {
	s   *Store
	id  int // index in Store.cs
	eng ioring.Engine

	// counters for Stats; written by the committer goroutine only
	rounds, writes, syncs, bytes atomic.Int64

	qmu     sync.Mutex
	queue   []pending
	wake    chan struct{}
	stopReq bool

	// round state, committer goroutine only
	work     []pending
	deferred []pending // appends waiting behind a roll
	groups   []group
	ops      []ioring.Op
	bufs     [][]byte
	done     chan struct{}
	// stage is the aligned arena direct writes are staged in, staged its
	// used length this round (direct.go).
	stage  []byte
	staged int
}

func newCommitter(s *Store, eng ioring.Engine) *committer {
	return &committer{s: s, eng: eng, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// enqueue adds an append to the next round. Called with p.log.mu held, which
// keeps each log's queue order equal to its offset order.
func (c *committer) enqueue(p pending) {
	c.qmu.Lock()
	c.queue = append(c.queue, p)
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stop makes run return once the queue is empty.
func (c *committer) stop() {
	c.qmu.Lock()
	c.stopReq = true
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	var tick <-chan time.Time
	if c.s.cfg.Flush == FlushInterval && c.s.cfg.FlushEvery > 0 {
		t := time.NewTicker(c.s.cfg.FlushEvery / 4)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-c.wake:
		case <-tick:
			c.flushDue()
			continue
		}
		for {
			c.qmu.Lock()
			c.work, c.queue = c.queue, c.work[:0]
			stop := c.stopReq && len(c.work) == 0
			c.qmu.Unlock()
			if stop {
				return
			}
			if len(c.work) == 0 {
				break
			}
			c.round()
		}
	}
}

// round writes c.work. Appends that do not fit in their log's active segment
// wait for the next round, behind a roll.
func (c *committer) round() {
	c.groups, c.ops, c.deferred = c.groups[:0], c.ops[:0], c.deferred[:0]
	for i := range c.work {
		l := c.work[i].log
		if l.cidx < 0 || l.cidx >= len(c.groups) || c.groups[l.cidx].log != l {
			l.cidx = len(c.groups)
			if len(c.groups) < cap(c.groups) {
				c.groups = c.groups[:len(c.groups)+1]
				g := &c.groups[l.cidx]
				*g = group{log: l, items: g.items[:0]}
			} else {
				c.groups = append(c.groups, group{log: l})
			}
		}
		g := &c.groups[l.cidx]
		g.items = append(g.items, i)
	}
	now := c.s.now()
	for gi := range c.groups {
		c.plan(&c.groups[gi], now)
	}
	if len(c.ops) > 0 {
		start := time.Now()
		c.eng.Do(c.ops)
		c.directStats()
		rs := Round{Appends: len(c.work) - len(c.deferred), Took: time.Since(start)}
		c.rounds.Add(1)
		for i := range c.ops {
			if c.ops[i].Kind == ioring.OpSync {
				rs.Syncs++
			} else {
				rs.Writes++
				rs.Bytes += c.ops[i].N
			}
		}
		c.syncs.Add(int64(rs.Syncs))
		c.writes.Add(int64(rs.Writes))
		c.bytes.Add(rs.Bytes)
		if c.s.cfg.OnRound != nil {
			c.s.cfg.OnRound(rs)
		}
	}
	for gi := range c.groups {
		c.finish(&c.groups[gi], now)
	}
	if len(c.deferred) > 0 {
		c.qmu.Lock()
		c.queue = append(c.deferred, c.queue...)
		c.deferred = nil // now owned by the queue
		c.qmu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	failed := false
	for i := range c.ops {
		failed = failed || c.ops[i].Err != nil
	}
	for gi := range c.groups {
		c.groups[gi].log.cidx = -1
		c.groups[gi].stage = nil
	}
	c.endStageRound(failed)
	clear(c.work) // drop buffer and callback references
}

// plan builds g's ops: roll if the first append does not fit, then one write
// of every append that fits, then the fsync the policy asks for. Appends that
// do not fit wait in c.deferred for the next round.
func (c *committer) plan(g *group, now time.Time) {
	l := g.log
	g.writeOp, g.syncOp = -1, -1
	l.mu.Lock()
	if l.err != nil || l.closed {
		err := l.err
		if err == nil {
			err = ErrClosed
		}
		c.failItemsLocked(g, err)
		l.mu.Unlock()
		return
	}
	seg := l.active()
	first := &c.work[g.items[0]]
	if seg.size > 0 && l.shouldRoll(seg, seg.size+int64(len(first.buf)), first.last, now) {
		seg.acquire() // a concurrent DeleteLog must not close it under finishRoll
		l.mu.Unlock()
		// The old segment is made durable before any byte goes to the new one:
		// otherwise a crash could keep the new segment's data and lose the old
		// one's tail, leaving a hole in the offsets.
		l.finishRoll(seg)
		seg.release()
		l.mu.Lock()
		err := l.err // finishRoll's cut or sync may have failed
		l.mu.Unlock()
		var ns *segment
		if err == nil {
			ns, err = l.roll(first.base)
		}
		l.mu.Lock()
		if err != nil {
			c.abortLocked(g, err)
			l.mu.Unlock()
			return
		}
		seg = ns
	}
	g.seg, g.pos = seg, seg.size
	end := seg.size
	n := 0
	for _, i := range g.items {
		p := &c.work[i]
		if n > 0 && l.shouldRoll(seg, end+int64(len(p.buf)), p.last, now) {
			break
		}
		end += int64(len(p.buf))
		n++
	}
	for _, i := range g.items[n:] {
		c.deferred = append(c.deferred, c.work[i])
		c.work[i].done = nil // moved, not failed
	}
	g.items = g.items[:n]
	wantSync := c.s.cfg.Flush == FlushAck || l.flushDueLocked(now, c.work[g.items[n-1]].last+1)
	bufStart := len(c.bufs)
	for _, i := range g.items {
		c.bufs = append(c.bufs, c.work[i].buf)
	}
	file, off := seg.f, g.pos
	if l.directReadyLocked(seg) {
		g.stage, g.end = c.stageDirect(seg, g.pos, c.bufs[bufStart:]), end
		c.bufs = append(c.bufs[:bufStart], g.stage)
		file, off = seg.dw.f, g.pos&^(directAlign-1)
	}
	// Pin the segment for the round: a concurrent DeleteLog must not close
	// (and let the kernel reuse) the descriptor the write is queued on.
	seg.acquire()
	l.mu.Unlock()

	g.writeOp = len(c.ops)
	c.ops = append(c.ops, ioring.Op{Kind: ioring.OpWrite, File: file, Off: off,
		Bufs: c.bufs[bufStart:len(c.bufs):len(c.bufs)], Link: wantSync})
	if wantSync {
		g.syncOp = len(c.ops)
		c.ops = append(c.ops, ioring.Op{Kind: ioring.OpSync, File: seg.f})
	}
}

// failItemsLocked fails g's appends with err. Called with g.log.mu held.
func (c *committer) failItemsLocked(g *group, err error) {
	for _, i := range g.items {
		c.work[i].err = err
	}
	g.log.inflight -= len(g.items)
}

// abortLocked fails g's appends and every later append of the log still
// waiting (queued or deferred): their offsets were assigned after g's, so the
// log's offsets rewind to g's first. Called with g.log.mu held; the later
// appends' completions run on their own goroutine, since running them here,
// under mu, would deadlock a completion that appends again. Failure is rare.
func (c *committer) abortLocked(g *group, err error) {
	l := g.log
	c.failItemsLocked(g, err)
	first := c.work[g.items[0]].base
	l.next = first
	l.epochs.truncateFromEnd(first)
	l.prod.rollback(first) // a retry of the failed batches is not a duplicate
	var dropped []pending
	keep := func(q []pending) []pending {
		kept := q[:0]
		for _, p := range q {
			if p.log == l {
				dropped = append(dropped, p)
			} else {
				kept = append(kept, p)
			}
		}
		clear(q[len(kept):])
		return kept
	}
	c.deferred = keep(c.deferred)
	c.qmu.Lock()
	c.queue = keep(c.queue)
	c.qmu.Unlock()
	l.inflight -= len(dropped)
	if len(dropped) > 0 {
		go func() {
			for _, p := range dropped {
				p.done(AppendResult{BaseOffset: p.base, LastOffset: p.last, LogAppendTime: -1, Err: err})
			}
		}()
	}
}

// shouldRoll reports whether an append ending at offset last, which would
// grow seg to newSize bytes, must go to a new segment. Called with l.mu held.
func (l *Log) shouldRoll(seg *segment, newSize, last int64, now time.Time) bool {
	return newSize > l.cfg.SegmentBytes ||
		last-seg.base > math.MaxInt32 || // relative offsets in the index are 32-bit
		(seg.firstTs >= 0 && now.UnixMilli()-seg.firstTs >= l.cfg.rollMs().Milliseconds())
}

// flushDueLocked says whether FlushInterval wants a sync once the log reaches end.
func (l *Log) flushDueLocked(now time.Time, end int64) bool {
	cfg := &l.store.cfg
	if cfg.Flush != FlushInterval {
		return false
	}
	return (cfg.FlushMessages > 0 && l.unflushed+end-l.leo >= cfg.FlushMessages) ||
		(cfg.FlushEvery > 0 && now.Sub(l.lastFlush) >= cfg.FlushEvery)
}

// finish applies g's results and runs the completions.
func (c *committer) finish(g *group, now time.Time) {
	l := g.log
	var failed error
	if g.writeOp >= 0 {
		w := &c.ops[g.writeOp]
		switch {
		case w.Err != nil:
			failed = c.failWrite(g, w)
		case g.syncOp >= 0 && c.ops[g.syncOp].Err != nil:
			failed = storageErr("fdatasync "+g.seg.f.Name(), c.ops[g.syncOp].Err)
			l.mu.Lock()
			l.err = failed
			l.mu.Unlock()
		default:
			// The segment is pinned until release below, so its descriptor is
			// still this file's when the cold pages are dropped.
			dropPages(c.applyWrite(g, now))
		}
		c.ops[g.writeOp].Bufs = nil
		g.seg.release()
	}
	for _, i := range g.items {
		p := &c.work[i]
		if p.done == nil {
			continue
		}
		err := p.err
		if err == nil {
			err = failed
		}
		p.done(AppendResult{BaseOffset: p.base, LastOffset: p.last, LogAppendTime: p.appendTime, Err: err})
	}
	clear(c.bufs)
	c.bufs = c.bufs[:0]
}

// applyWrite makes g's appends visible: sizes, indexes, LEO, recovery point.
// For a cold log it returns the synced range to drop from the page cache.
func (c *committer) applyWrite(g *group, now time.Time) (vfs.File, int64, int64) {
	l, seg := g.log, g.seg
	l.mu.Lock()
	defer l.mu.Unlock()
	interval := l.cfg.IndexIntervalBytes
	pos := g.pos
	for _, i := range g.items {
		p := &c.work[i]
		for rest := p.buf; len(rest) > 0; {
			h := parseHeader(rest)
			ts := h.MaxTimestamp
			if p.appendTime >= 0 {
				ts = p.appendTime
			}
			if ts > seg.maxTs {
				seg.maxTs, seg.relOfMaxTs = ts, uint32(h.LastOffset()-seg.base)
			}
			seg.hasRecords = seg.hasRecords || h.RecordCount > 0
			if seg.firstTs < 0 {
				seg.firstTs = now.UnixMilli()
			}
			seg.ix.maybeAdd(interval, uint32(h.LastOffset()-seg.base), uint32(pos), h.Size(), seg.maxTs, seg.relOfMaxTs)
			pos += h.Size()
			rest = rest[h.Size():]
		}
		l.leo = p.last + 1
		l.unflushed += p.records
		l.inflight--
	}
	seg.size, seg.next = pos, l.leo
	seg.indexOnDisk = false
	if g.stage != nil {
		seg.dw.afterDirectWriteLocked(g.stage, g.pos, seg.size)
	} else {
		seg.dw.tailOK = false // the page cache wrote the last block
	}
	if g.syncOp >= 0 {
		seg.synced = seg.size
		l.recoveryPoint = l.leo
		l.unflushed = 0
		l.lastFlush = now
	}
	if l.epochs.dirty {
		if err := l.saveEpochsLocked(); err != nil {
			l.store.log.Error("leader epoch checkpoint", "dir", l.dir, "err", err)
		}
	}
	if g.stage != nil {
		seg.dropped = seg.synced // never cached
		return nil, 0, 0
	}
	return l.coldRangeLocked(seg)
}

// failWrite undoes a failed write: the file is cut back to where the write
// began and the appends fail (abortLocked). ENOSPC leaves the log usable once
// space frees, and so does EINVAL from a direct write (the device wants a
// larger alignment than directAlign): direct writes stop. Any other error
// makes the log's error sticky.
func (c *committer) failWrite(g *group, w *ioring.Op) error {
	l := g.log
	err := storageErr("write "+g.seg.f.Name(), w.Err)
	l.mu.Lock()
	defer l.mu.Unlock()
	g.seg.dw.padded, g.seg.dw.tailOK = false, false
	misaligned := g.stage != nil && errors.Is(w.Err, unix.EINVAL)
	if misaligned && c.s.noDirect.CompareAndSwap(false, true) {
		l.store.log.Warn("direct write refused, follower logs write through the page cache", "dir", l.dir, "err", w.Err)
	}
	if terr := g.seg.f.Truncate(g.pos); terr != nil {
		l.err = storageErr("truncate after failed write", errors.Join(w.Err, terr))
	} else if !errors.Is(w.Err, unix.ENOSPC) && !misaligned {
		l.err = err
	}
	c.abortLocked(g, err)
	return err
}

// flushDue syncs logs whose log.flush.interval.ms has passed (FlushInterval).
func (c *committer) flushDue() {
	now := c.s.now()
	for _, l := range c.s.Logs() {
		if l.c != c {
			continue // another committer's log
		}
		l.mu.Lock()
		due := l.err == nil && !l.closed && l.leo > l.recoveryPoint && l.inflight == 0 &&
			now.Sub(l.lastFlush) >= c.s.cfg.FlushEvery
		l.mu.Unlock()
		if due {
			if err := l.Flush(); err != nil {
				c.s.log.Error("interval flush", "dir", l.dir, "err", err)
			}
		}
	}
}
