package segstore

import (
	"errors"
	"fmt"
	"runtime"
)

// Several committers: the node runs one per NUMA node so that a partition's
// group commit (the io_uring submissions, the completion callbacks and the
// buffers they touch) runs on CPUs of the node its shard lives on. Each
// committer has its own engine (an io_uring is single-submitter) and its
// own group commit; a log belongs to exactly one committer for its whole
// life, which keeps its appends in offset order. With Config.Committers <= 1
// and no hooks this is the single committer of old, unchanged.

// newCommitters makes cfg.Committers committers: the first runs cfg.Engine,
// the others engines from cfg.NewEngine. On error the engines made here are
// closed again (cfg.Engine stays the caller's, as before).
func (st *Store) newCommitters() error {
	n := max(st.cfg.Committers, 1)
	if n > 1 && st.cfg.NewEngine == nil {
		return errors.New("segstore: Config.NewEngine is required when Committers > 1")
	}
	st.cs = []*committer{newCommitter(st, st.cfg.Engine)}
	for i := 1; i < n; i++ {
		eng, err := st.cfg.NewEngine(i)
		if err != nil {
			st.closeExtraEngines()
			st.cs = nil
			return fmt.Errorf("segstore: engine for committer %d: %w", i, err)
		}
		c := newCommitter(st, eng)
		c.id = i
		st.cs = append(st.cs, c)
	}
	return nil
}

// closeExtraEngines closes the engines of committers 1..n-1.
func (st *Store) closeExtraEngines() error {
	var errs []error
	for _, c := range st.cs[1:] {
		errs = append(errs, c.eng.Close())
	}
	return errors.Join(errs...)
}

// startCommitters starts every committer's goroutine.
func (st *Store) startCommitters() {
	for _, c := range st.cs {
		go c.start()
	}
}

// stopCommitters finishes every committer's queue and waits for them.
func (st *Store) stopCommitters() {
	for _, c := range st.cs {
		c.stop()
	}
}

// start runs the committer. With a CommitterStart hook the goroutine is
// locked to its OS thread first and never unlocked: whatever the hook does
// to the thread (CPU affinity) then holds for every round, and when run
// returns the runtime discards the thread instead of handing a pinned
// thread to other goroutines.
func (c *committer) start() {
	if hook := c.s.cfg.CommitterStart; hook != nil {
		runtime.LockOSThread()
		hook(c.id)
	}
	c.run()
}

// bind gives l its committer. Called once per log before the log is
// published in st.logs (so Append, which reads l.c, never sees it unset),
// with st.mu held or before Open returns.
func (st *Store) bind(l *Log) {
	i := 0
	if f := st.cfg.CommitterFor; f != nil && len(st.cs) > 1 {
		i = f(l.topic, l.partition) % len(st.cs)
		if i < 0 {
			i += len(st.cs)
		}
	}
	l.c = st.cs[i]
}

// unbound tells the CommitterFor owner that a log is gone.
func (st *Store) unbound(topic string, partition int32) {
	if f := st.cfg.LogDeleted; f != nil {
		f(topic, partition)
	}
}

// Committers is the number of committer goroutines. Safe for concurrent use.
func (st *Store) Committers() int { return len(st.cs) }

// CommitterStats returns each committer's counters, by committer index.
// Safe for concurrent use.
func (st *Store) CommitterStats() []Stats {
	out := make([]Stats, len(st.cs))
	for i, c := range st.cs {
		out[i] = c.stats()
	}
	return out
}

func (c *committer) stats() Stats {
	return Stats{Rounds: c.rounds.Load(), Writes: c.writes.Load(), Syncs: c.syncs.Load(), Bytes: c.bytes.Load()}
}

// Committer is the index of the committer that writes this log. Safe for
// concurrent use (fixed for the log's life).
func (l *Log) Committer() int { return l.c.id }
