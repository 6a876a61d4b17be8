package ctrl

import (
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// MemNetwork is an in-memory Transport between Nodes with injectable faults (partitions, loss, delay), for
// deterministic tests here and in packages that embed controllers. Nothing moves until the test calls Deliver, and
// time (for delays) moves only with Advance, so a test decides every interleaving. Safe for concurrent use.
// Lock order: a Node's mutex, then MemNetwork's (Send); Deliver releases MemNetwork's before calling a Node.
type MemNetwork struct {
	mu       sync.Mutex
	nodes    map[uint64]*Node
	queue    []envelope
	group    map[uint64]int // partition group per node; absent = group 0
	down     map[uint64]bool
	dropRate float64
	delay    int
	now      int
	rng      *rand.Rand
	sent     int
	dropped  int
}

type envelope struct {
	m  raftpb.Message
	at int
}

// NewMemNetwork returns a healthy network; seed drives the loss pattern.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{nodes: map[uint64]*Node{}, group: map[uint64]int{}, down: map[uint64]bool{},
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Attach routes messages for id to node (replacing an earlier node, e.g. after a restart).
func (w *MemNetwork) Attach(id uint64, node *Node) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nodes[id] = node
	delete(w.down, id)
}

// Down takes id off the network (a crashed process): nothing to or from it is delivered.
func (w *MemNetwork) Down(id uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down[id] = true
}

// Partition splits the network: messages flow only within a group. Nodes in no group form one more group.
func (w *MemNetwork) Partition(groups ...[]uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.group = map[uint64]int{}
	for i, g := range groups {
		for _, id := range g {
			w.group[id] = i + 1
		}
	}
}

// Heal removes partitions, loss and delay.
func (w *MemNetwork) Heal() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.group, w.dropRate, w.delay = map[uint64]int{}, 0, 0
}

// SetDropRate makes each message lost with probability f.
func (w *MemNetwork) SetDropRate(f float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropRate = f
}

// SetDelay holds each new message for that many Advance calls.
func (w *MemNetwork) SetDelay(ticks int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.delay = ticks
}

// Advance moves the network's clock one tick (releasing delayed messages at the next Deliver).
func (w *MemNetwork) Advance() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now++
}

// Stats returns messages sent and dropped so far.
func (w *MemNetwork) Stats() (sent, dropped int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent, w.dropped
}

func (w *MemNetwork) blocked(m raftpb.Message) bool {
	return w.down[m.From] || w.down[m.To] || w.group[m.From] != w.group[m.To] || w.nodes[m.To] == nil
}

// Transport returns a Transport that sends into this network (one serves every node).
func (w *MemNetwork) Transport() Transport { return memTransport{w} }

type memTransport struct{ w *MemNetwork }

func (t memTransport) Send(msgs []raftpb.Message) {
	w := t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs {
		w.sent++
		w.queue = append(w.queue, envelope{m: m, at: w.now + w.delay})
	}
}

// Deliver hands every due message to its node (checking partitions and loss at delivery) and returns how many it
// handled. Call it from the test goroutine with no Node lock held.
func (w *MemNetwork) Deliver() int {
	w.mu.Lock()
	var due, keep []envelope
	for _, e := range w.queue {
		if e.at <= w.now {
			due = append(due, e)
		} else {
			keep = append(keep, e)
		}
	}
	w.queue = keep
	type delivery struct {
		to, from *Node
		m        raftpb.Message
		ok       bool
	}
	ds := make([]delivery, 0, len(due))
	for _, e := range due {
		ok := !w.blocked(e.m) && (w.dropRate == 0 || w.rng.Float64() >= w.dropRate)
		if !ok {
			w.dropped++
		}
		ds = append(ds, delivery{to: w.nodes[e.m.To], from: w.nodes[e.m.From], m: e.m, ok: ok})
	}
	w.mu.Unlock()
	for _, d := range ds {
		if d.ok {
			_ = d.to.Step(d.m)
		}
		if d.m.Type == raftpb.MsgSnap && d.from != nil {
			d.from.ReportSnapshot(d.m.To, d.ok)
		}
	}
	return len(ds)
}

// FakeClock is a Clock that moves only when told. Safe for concurrent use.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock starts at a fixed instant, so runs are reproducible.
func NewFakeClock() *FakeClock { return &FakeClock{t: time.Unix(1_700_000_000, 0)} }

// Now implements Clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
