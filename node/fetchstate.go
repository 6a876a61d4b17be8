package node

import (
	"sync"
	"time"

	"github.com/sluicemq/sluice/netpoll"
)

// fetchOp states: only a parked op may be fired, by exactly one of an
// append's wake, its timer, or shutdown.
const (
	opRunning int32 = iota
	opParked
	opFired
)

// fetchState is the broker's fetch-side state: the fetch session cache
// (fetchsession.go) and the set of parked long-poll fetches, which shutdown
// answers at once.
//
// Parking: a fetch that found less than MinBytes releases what it read,
// marks itself parked, watches each of its partitions and arms a timer, all
// under fetchOp.mu; then it looks at the partitions' high watermarks once
// more, because an append that completed between its read and its watch
// woke nobody. Whoever moves it from parked to fired first (an append's
// wake on the committer goroutine, the timer, shutdown, or that second look)
// resumes it on another goroutine: unwatch, stop the timer, read again,
// answer or park again. Parked fetches hold no segment.
//
// Concurrency: safe for concurrent use; mu guards the fields below it. Lock
// order: fetchOp.mu, then fetchState.mu or partition.watchMu (each taken
// alone); fetchState.mu, then fetchSession.mu. wake never takes a lock: it
// runs under partition.watchMu.
type fetchState struct {
	now         func() time.Time
	maxSessions int

	mu       sync.Mutex
	sessions map[int32]*fetchSession
	parked   map[*fetchOp]struct{}
	closed   bool // shutting down: nothing parks any more
}

func newFetchState(n *Node) *fetchState {
	fs := &fetchState{
		now: n.cfg.Now, maxSessions: defaultFetchSessionSlots,
		sessions: map[int32]*fetchSession{}, parked: map[*fetchOp]struct{}{},
	}
	if fs.now == nil {
		fs.now = time.Now
	}
	if s := n.cfg.Metrics; s != nil {
		s.NewGauge("sluice_fetch_sessions", func() float64 { return float64(fs.count(false)) })
		s.NewGauge("sluice_fetch_parked", func() float64 { return float64(fs.count(true)) })
	}
	return fs
}

func (fs *fetchState) count(parked bool) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if parked {
		return len(fs.parked)
	}
	return len(fs.sessions)
}

// addParked records op as parked; false when shutting down (answer now).
func (fs *fetchState) addParked(op *fetchOp) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return false
	}
	fs.parked[op] = struct{}{}
	return true
}

func (fs *fetchState) removeParked(op *fetchOp) {
	fs.mu.Lock()
	delete(fs.parked, op)
	fs.mu.Unlock()
}

func (fs *fetchState) isClosed() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.closed
}

// shutdown answers every parked fetch now (each re-reads and answers on its
// own goroutine) and makes later fetches answer without parking. Safe for
// concurrent use; it does not wait for the answers (Node.Close's network
// stop does).
func (fs *fetchState) shutdown() {
	fs.mu.Lock()
	fs.closed = true
	ops := make([]*fetchOp, 0, len(fs.parked))
	for op := range fs.parked {
		ops = append(ops, op)
	}
	fs.mu.Unlock()
	for _, op := range ops {
		op.wake()
	}
}

// connClosed ends the parked fetches of a closed connection now rather than
// at their timeout: nobody will read their answers, and until then they hold
// watchers and timers. Runs on the connection's event loop; O(parked).
func (fs *fetchState) connClosed(c *netpoll.Conn) {
	fs.mu.Lock()
	var ops []*fetchOp
	for op := range fs.parked {
		if op.c.req.Conn == c {
			ops = append(ops, op)
		}
	}
	fs.mu.Unlock()
	for _, op := range ops {
		op.gone.Store(true)
		op.wake()
	}
}

// park registers op with every partition it reads and arms its timer. It
// returns false when the broker is shutting down (answer now instead).
func (op *fetchOp) park() bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	if !op.n.fetch.addParked(op) {
		return false
	}
	op.state.Store(opParked)
	for i := range op.items {
		if p := op.items[i].p; p != nil {
			p.watch(op)
			op.watched = append(op.watched, p)
		}
	}
	d := time.Until(op.deadline)
	if op.timer == nil {
		op.timer = time.AfterFunc(d, op.expire)
	} else {
		op.timer.Reset(d)
	}
	// An append that completed between the read and watch() woke nobody:
	// look again now that wakes reach op (hw and the watcher count are
	// atomics, so either this sees the new hw or the append saw op).
	for i := range op.items {
		it := &op.items[i]
		if it.p != nil && (it.p.hw.Load() != it.hw || it.p.getLog() == nil) {
			op.wake()
			break
		}
	}
	return true
}

// wake implements waiter: called on the storage committer goroutine (and by
// shutdown and park), it must not block, so the read runs on a goroutine.
func (op *fetchOp) wake() {
	if op.state.CompareAndSwap(opParked, opFired) {
		go op.resume()
	}
}

// expire runs on the timer's goroutine.
func (op *fetchOp) expire() {
	if op.state.CompareAndSwap(opParked, opFired) {
		op.resume()
	}
}

func (op *fetchOp) resume() {
	op.mu.Lock()
	for _, p := range op.watched {
		p.unwatch(op)
	}
	clear(op.watched)
	op.watched = op.watched[:0]
	op.timer.Stop()
	op.mu.Unlock()
	fs := op.n.fetch
	fs.removeParked(op)
	if fs.isClosed() || op.gone.Load() {
		op.final = true
	}
	op.state.Store(opRunning)
	op.run()
}
