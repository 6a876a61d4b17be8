package node

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/netpoll"
)

// fetchOp states: only a parked op may be fired, by exactly one of a wake
// (append, DeleteRecords, topic deletion, shutdown, connClosed, park's second
// look) or its timer.
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
// under fetchOp.mu; then it looks at the partitions' high watermarks and log
// start offsets once more, because an append or DeleteRecords that completed
// between its read and its watch woke nobody. Whoever moves it from parked
// to fired first resumes it on another goroutine: unwatch, stop the timer,
// read again, answer or park again. Parked fetches hold no segment. A fetch
// whose connection closed while it was parked is resumed only to be
// dropped: no read, no fetch session, no answer.
//
// Close: every successful park counts one in Node.async (in addParked, under
// mu, only while not closed) and the resume that ends it counts it done once
// it has answered, dropped or parked again (which counted anew), whatever
// goroutine fired it (a wake's, or the timer's). Node.Close runs shutdown,
// then stops the network, then waits for Node.async. shutdown sets closed
// under mu, so every count-up happens before the wait, and it wakes every
// parked fetch (one it lists before the fetch is marked parked is woken by
// park's second look, which checks closed). The wait cannot deadlock with
// the network stop: after shutdown a resumed fetch reads once and answers or
// drops, it cannot park again, and nothing it does waits for the event loops
// (Request.Respond and NoResponse only queue the answer, or release it for
// a closed connection); the stop waits for connections to drain, which these
// answers help, never for the wait. So no fetch goroutine outlives Close or
// reads a log after the store is closed.
//
// Concurrency: safe for concurrent use; mu guards the fields below it. Lock
// order: fetchOp.mu, then fetchState.mu, partition.watchMu or a log's mutex
// (each taken alone); fetchState.mu, then fetchSession.mu. wake never takes
// a lock: it runs under partition.watchMu.
type fetchState struct {
	now         func() time.Time
	maxSessions int
	async       *sync.WaitGroup // Node.async; nil in tests without a node

	// closed is set (under mu) when shutting down: nothing parks any more.
	// Read under mu where it must order with the parked set (addParked),
	// without it elsewhere.
	closed atomic.Bool

	mu       sync.Mutex
	sessions map[int32]*fetchSession
	parked   map[*fetchOp]struct{}
}

func newFetchState(n *Node) *fetchState {
	fs := &fetchState{
		now: n.cfg.Now, maxSessions: defaultFetchSessionSlots, async: &n.async,
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

// addParked records op as parked and counts its coming resume in
// Node.async; false when shutting down (answer now). Checking closed and
// counting under mu is what orders every count-up before Close's wait.
func (fs *fetchState) addParked(op *fetchOp) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed.Load() {
		return false
	}
	fs.parked[op] = struct{}{}
	if fs.async != nil {
		fs.async.Add(1)
	}
	return true
}

// resumed counts a parked op's resume done (see addParked).
func (fs *fetchState) resumed() {
	if fs.async != nil {
		fs.async.Done()
	}
}

func (fs *fetchState) removeParked(op *fetchOp) {
	fs.mu.Lock()
	delete(fs.parked, op)
	fs.mu.Unlock()
}

func (fs *fetchState) isClosed() bool { return fs.closed.Load() }

// shutdown answers every parked fetch now (each re-reads and answers on its
// own goroutine) and makes later fetches answer without parking. Safe for
// concurrent use; it does not wait for the answers (Node.Close waits for
// Node.async, which counts them).
func (fs *fetchState) shutdown() {
	fs.mu.Lock()
	fs.closed.Store(true)
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
	if !op.throttleUntil.IsZero() && op.throttleUntil.Before(op.deadline) {
		// A partition held back by the leader replication quota: read
		// again when it frees (run answers only at the deadline).
		d = time.Until(op.throttleUntil)
	}
	if op.timer == nil {
		op.timer = time.AfterFunc(d, op.expire)
	} else {
		op.timer.Reset(d)
	}
	// An append that completed between the read and watch() woke nobody:
	// look again now that wakes reach op (hw and the watcher count are
	// atomics, so either this sees the new hw or the append saw op).
	// Likewise a shutdown that listed op after addParked but woke it before
	// it was marked parked: closed was set before that wake, so it shows.
	if op.n.fetch.isClosed() {
		op.wake()
		return true
	}
	// DeleteRecords moving the log start wakes too, so compare that as well.
	for i := range op.items {
		it := &op.items[i]
		if it.p == nil {
			continue
		}
		// A follower reads up to the log end, so an append it missed shows
		// there, not (yet) in the high watermark.
		l := it.p.getLog()
		if l == nil || it.p.hw.Load() != it.hw || l.Offsets().Start != it.logStart ||
			op.follower && l.Offsets().End != it.leo {
			op.wake()
			break
		}
	}
	return true
}

// wake implements waiter: called on the storage committer goroutine (and by
// shutdown, connClosed and park), it must not block, so the read runs on a
// goroutine (counted in Node.async since the park, see addParked).
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

// resume ends a park: exactly one per successful park.
func (op *fetchOp) resume() {
	fs := op.n.fetch
	defer fs.resumed()
	op.mu.Lock()
	for _, p := range op.watched {
		p.unwatch(op)
	}
	clear(op.watched)
	op.watched = op.watched[:0]
	op.timer.Stop()
	op.mu.Unlock()
	fs.removeParked(op)
	op.state.Store(opRunning)
	if op.gone.Load() {
		op.drop()
		return
	}
	if fs.isClosed() {
		op.final = true
	}
	op.run()
}
