package repl

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/sluicemq/sluice/segstore"
)

// The simulation: N replicas of one partition, each a real segstore.Log on
// its own MemFS, a fake clock, a network of queued messages the test
// delivers one at a time (or drops), crashes that keep only synced bytes,
// and a fake controller that elects leaders from the ISR in replica order.
// Metadata reaches live brokers at once; fetches, OffsetForLeaderEpoch and
// AlterPartition go through the network.

const simTopic = "t"

type simNode struct {
	id       int32
	flush    segstore.FlushPolicy
	fs       *vfs.MemFS
	st       *segstore.Store
	log      *segstore.Log
	up       bool
	inc      int // incarnation: messages to an older one are lost
	leader   *Leader
	fol      *Follower
	inflight bool  // the follower has a request on the network
	hwCkpt   int64 // replication-offset-checkpoint
}

type simMsg struct {
	to      int32 // -1: the controller
	toInc   int
	what    string
	deliver func()
	lost    func() // nil, or what the sender does on a timeout
}

type acked struct {
	offset int64
	batch  []byte
}

type sim struct {
	t       *testing.T
	clock   *fakeClock
	nodes   []*simNode
	net     []simMsg
	ctl     simCtl
	minISR  int
	query   bool // followers use OffsetForLeaderEpoch
	seq     int
	acked   []acked // acks=all successes
	acks1   []acked // acks=1 successes
	hwSeen  map[[2]int32]int64
	tracing bool
}

func newSim(t *testing.T, minISR int, flush ...segstore.FlushPolicy) *sim {
	s := &sim{t: t, clock: newFakeClock(), minISR: minISR, hwSeen: map[[2]int32]int64{}}
	for i, f := range flush {
		n := &simNode{id: int32(i + 1), flush: f, fs: vfs.NewMem()}
		s.nodes = append(s.nodes, n)
		s.ctl.replicas = append(s.ctl.replicas, n.id)
		s.open(n)
	}
	s.ctl.isr = slices.Clone(s.ctl.replicas)
	s.ctl.fenced = map[int32]bool{}
	s.ctl.elect()
	s.pushMetadata()
	t.Cleanup(func() {
		for _, n := range s.nodes {
			if n.up {
				n.st.Close()
			}
		}
	})
	return s
}

func (s *sim) node(id int32) *simNode { return s.nodes[id-1] }

func (s *sim) tracef(format string, args ...any) {
	if s.tracing {
		s.t.Logf(format, args...)
	}
}

func (s *sim) open(n *simNode) {
	s.t.Helper()
	st, err := segstore.Open(segstore.Config{Dir: "/data", FS: n.fs, Engine: ioring.NewFake(), Flush: n.flush,
		Now: s.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		s.t.Fatalf("open node %d: %v", n.id, err)
	}
	l := st.Log(simTopic, 0)
	if l == nil {
		if l, err = st.CreateLog(simTopic, 0, segstore.LogConfig{SegmentBytes: 4 << 10}); err != nil {
			s.t.Fatal(err)
		}
	}
	n.st, n.log, n.up, n.leader, n.fol, n.inflight = st, l, true, nil, nil, false
	n.inc++
}

// crash cuts node id's power (only synced bytes survive, every message to
// it is lost) and the controller fences it.
func (s *sim) crash(id int32) {
	s.powerCut(id)
	s.ctl.fence(id)
	s.pushMetadata()
}

// restart brings a crashed node back; the controller unfences it.
func (s *sim) restart(id int32) {
	s.powerOn(id)
	s.ctl.unfence(id)
	s.pushMetadata()
}

// powerCut stops node id as a crash does, before the controller notices
// (within broker.session.timeout.ms).
func (s *sim) powerCut(id int32) {
	n := s.node(id)
	s.tracef("power cut %d", id)
	old := n.st
	n.fs = n.fs.CrashClone(vfs.DropUnsynced, nil)
	if n.leader != nil {
		n.leader.Resign()
	}
	n.up, n.leader, n.fol = false, nil, nil
	old.Close() // writes only to the abandoned MemFS
}

// powerOn restarts a node from what its disk kept; it learns the current
// metadata at once.
func (s *sim) powerOn(id int32) {
	s.tracef("power on %d", id)
	s.open(s.node(id))
	s.pushMetadata()
}

// hw is what node n knows as the partition's high watermark.
func (n *simNode) hw() int64 {
	switch {
	case n.leader != nil:
		return n.leader.HighWatermark()
	case n.fol != nil:
		return n.fol.HighWatermark()
	}
	return n.hwCkpt
}

// pushMetadata makes every live broker act on the controller's state.
func (s *sim) pushMetadata() {
	st := s.ctl.state()
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		if st.Leader == n.id {
			if n.leader != nil && n.leader.UpdateState(st) {
				continue
			}
			hw := n.hw()
			if n.leader != nil {
				n.leader.Resign()
			}
			n.fol = nil
			n.leader = NewLeader(LeaderConfig{BrokerID: n.id, MinISR: s.minISR, Clock: s.clock,
				AlterPartition: s.alterFrom(n)}, n.log, st, hw)
			continue
		}
		hw := n.hw()
		if n.leader != nil {
			n.leader.Resign()
			n.leader = nil
		}
		if st.Leader < 0 {
			n.fol = nil
			continue
		}
		if l, e := n.folLeader(); l != st.Leader || e != st.LeaderEpoch {
			n.fol = NewFollower(FollowerConfig{BrokerID: n.id, UseEpochQuery: s.query}, n.log, st.Leader, st.LeaderEpoch, hw)
			n.inflight = false
		}
	}
	s.noteHW()
}

func (n *simNode) folLeader() (int32, int32) {
	if n.fol == nil {
		return -1, -1
	}
	return n.fol.Leader()
}

// send queues a message to node to (or the controller, -1).
func (s *sim) send(to int32, what string, deliver func()) { s.sendOr(to, what, deliver, nil) }

// sendOr is send with lost run if the message is lost (dropped, or its
// receiver crashed): the sender's timeout.
func (s *sim) sendOr(to int32, what string, deliver, lost func()) {
	inc := 0
	if to > 0 {
		inc = s.node(to).inc
	}
	s.net = append(s.net, simMsg{to: to, toInc: inc, what: what, deliver: deliver, lost: lost})
}

// deliver delivers (or, if drop, loses) message i of the network.
func (s *sim) deliver(i int, drop bool) {
	m := s.net[i]
	s.net = slices.Delete(s.net, i, i+1)
	if drop || (m.to > 0 && (!s.node(m.to).up || s.node(m.to).inc != m.toInc)) {
		s.tracef("lost: %s", m.what)
		if m.lost != nil {
			m.lost()
		}
		return
	}
	s.tracef("deliver: %s", m.what)
	m.deliver()
	if s.tracing {
		for _, n := range s.nodes {
			if n.up {
				s.tracef("   node %d LEO %d HW %d epochs %v", n.id, n.log.Offsets().End, n.hw(), n.log.Epochs())
			}
		}
	}
	s.noteHW()
}

// drain delivers every message, oldest first, including those sent meanwhile.
func (s *sim) drain() {
	for len(s.net) > 0 {
		s.deliver(0, false)
	}
}

// noteHW checks that no leader's HW went backwards within its epoch and
// records every node's HW as its checkpoint.
func (s *sim) noteHW() {
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		n.hwCkpt = n.hw()
		if n.leader != nil {
			k := [2]int32{n.id, n.leader.Epoch()}
			if prev, ok := s.hwSeen[k]; ok && n.hwCkpt < prev {
				s.t.Fatalf("BUG: leader %d epoch %d HW went from %d back to %d", n.id, k[1], prev, n.hwCkpt)
			}
			s.hwSeen[k] = n.hwCkpt
		}
	}
}
