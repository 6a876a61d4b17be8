package ctrl

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// setPartition proposes a ChangePartition of t-i to leader and isr (from its current epoch).
func setPartition(t *testing.T, c *cluster, n *Node, topic string, i int32, leader int32, isr ...int32) {
	t.Helper()
	var r Record
	n.Read(func(s *State) {
		tp := s.Topics[topic]
		r = Record{Type: TypeChangePartition, ChangePartition: &ChangePartition{Topic: topic, ID: tp.ID, Partition: i,
			PartitionEpoch: tp.Partitions[i].PartitionEpoch, Leader: leader, ISR: isr}}
	})
	if _, err, _ := c.propose(c.ids[0], r, 10); err != nil {
		t.Fatalf("set %s-%d leader %d isr %v: %v", topic, i, leader, isr, err)
	}
}

func partition(n *Node, topic string, i int32) (p Partition) {
	n.Read(func(s *State) { p = s.Topics[topic].Partitions[i].clone() })
	return p
}

// elect runs ElectLeaders to completion and returns its per-partition results as codes (0 = elected).
func elect(t *testing.T, c *cluster, n *Node, unclean bool, parts map[string][]int32) map[string]map[int32]int16 {
	t.Helper()
	var res map[string]map[int32]error
	if err := await(t, c, func(done func(error)) error {
		return n.ElectLeaders(unclean, parts, func(r map[string]map[int32]error) { res = r; done(nil) })
	}); err != nil {
		t.Fatal(err)
	}
	codes := map[string]map[int32]int16{}
	for topic, ps := range res {
		codes[topic] = map[int32]int16{}
		for p, err := range ps {
			codes[topic][p] = toRPCErr(err).Code
		}
	}
	return codes
}

func TestElectLeadersPreferred(t *testing.T) {
	c, n, _ := adminCluster(t) // "t": 2 partitions, RF 2, on brokers 0..2
	p0, p1 := partition(n, "t", 0), partition(n, "t", 1)
	setPartition(t, c, n, "t", 0, p0.Replicas[1], p0.ISR...)      // preferred in the ISR, not leading
	setPartition(t, c, n, "t", 1, p1.Replicas[1], p1.Replicas[1]) // preferred out of the ISR
	got := elect(t, c, n, false, map[string][]int32{"t": {0, 1, 0, 9}, "nope": {0}})
	want := map[string]map[int32]int16{
		"t":    {0: 0, 1: kerr.PreferredLeaderNotAvailable.Code, 9: kerr.UnknownTopicOrPartition.Code},
		"nope": {0: kerr.UnknownTopicOrPartition.Code},
	}
	if !equalCodes(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if p := partition(n, "t", 0); p.Leader != p.Replicas[0] || p.LeaderEpoch != p0.LeaderEpoch+2 {
		t.Fatalf("partition 0 after the election: %+v", p)
	}
	got = elect(t, c, n, false, map[string][]int32{"t": {0}})
	if want := map[string]map[int32]int16{"t": {0: kerr.ElectionNotNeeded.Code}}; !equalCodes(got, want) {
		t.Fatalf("second election: %v, want %v", got, want)
	}
	// Every partition: those needing nothing are left out.
	setPartition(t, c, n, "t", 1, p1.Replicas[1], p1.Replicas[1], p1.Replicas[0])
	got = elect(t, c, n, false, nil)
	if want := map[string]map[int32]int16{"t": {1: 0}}; !equalCodes(got, want) {
		t.Fatalf("all partitions: %v, want %v", got, want)
	}
}

func TestElectLeadersUnclean(t *testing.T) {
	c, n, epochs := adminCluster(t)
	p0 := partition(n, "t", 0)
	lead := p0.Leader
	setPartition(t, c, n, "t", 0, lead, lead) // only the leader in sync
	// Topic "one" lives on lead alone.
	one := Record{Type: TypeCreateTopic, CreateTopic: &CreateTopic{Name: "one", ID: TopicID{42},
		Partitions: []PartitionInit{{Replicas: []int32{lead}, ISR: []int32{lead}, Leader: lead}}}}
	if _, err, _ := c.propose(c.ids[0], one, 10); err != nil {
		t.Fatal(err)
	}
	n.BrokerDisconnected(lead, epochs[lead])
	c.tick(2)
	if p := partition(n, "t", 0); p.Leader != NoLeader {
		t.Fatalf("t-0 not offline: %+v", p)
	}
	if p := partition(n, "t", 1); p.Leader == NoLeader {
		t.Fatalf("t-1 offline: %+v", p)
	}
	got := elect(t, c, n, true, map[string][]int32{"t": {0, 1}, "one": {0}})
	want := map[string]map[int32]int16{"t": {0: 0, 1: kerr.ElectionNotNeeded.Code}, "one": {0: kerr.EligibleLeadersNotAvailable.Code}}
	if !equalCodes(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	other := p0.Replicas[0] + p0.Replicas[1] - lead
	if p := partition(n, "t", 0); p.Leader != other || !slices.Equal(p.ISR, []int32{other}) {
		t.Fatalf("t-0 after unclean election: %+v, want %d leading alone", p, other)
	}
}

// TestElectOfflineLeaders: the periodic sweep elects nothing while no offline partition is electable, and elects
// uncleanly once the controller's static unclean.leader.election.enable is on (as after a restart with the key),
// which no fence, unfence or config change would have triggered.
func TestElectOfflineLeaders(t *testing.T) {
	c, n, epochs := adminCluster(t)
	p0 := partition(n, "t", 0)
	lead := p0.Leader
	setPartition(t, c, n, "t", 0, lead, lead) // only the leader in sync
	n.BrokerDisconnected(lead, epochs[lead])
	c.tick(2)
	if p := partition(n, "t", 0); p.Leader != NoLeader {
		t.Fatalf("t-0 not offline: %+v", p)
	}
	sweep := func() int {
		t.Helper()
		moved := -1
		if err := await(t, c, func(done func(error)) error {
			return n.ElectOfflineLeaders(func(m int, err error) { moved = m; done(err) })
		}); err != nil {
			t.Fatal(err)
		}
		return moved
	}
	if m := sweep(); m != 0 {
		t.Fatalf("sweep with unclean elections off moved %d partitions", m)
	}
	n.mu.Lock()
	n.state.uncleanDefault = true
	n.mu.Unlock()
	if m := sweep(); m != 1 {
		t.Fatalf("sweep with unclean elections on moved %d partitions, want 1", m)
	}
	other := p0.Replicas[0] + p0.Replicas[1] - lead
	if p := partition(n, "t", 0); p.Leader != other || !slices.Equal(p.ISR, []int32{other}) {
		t.Fatalf("t-0 after the sweep: %+v, want %d leading alone", p, other)
	}
	if m := sweep(); m != 0 {
		t.Fatalf("second sweep moved %d partitions", m)
	}
}

func equalCodes(a, b map[string]map[int32]int16) bool {
	if len(a) != len(b) {
		return false
	}
	for k, m := range a {
		bm := b[k]
		if len(m) != len(bm) {
			return false
		}
		for p, code := range m {
			if c, ok := bm[p]; !ok || c != code {
				return false
			}
		}
	}
	return true
}

func TestControlledShutdown(t *testing.T) {
	c := newCluster(t, 1, nil)
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 3, 1)
	n := c.nodes[l]
	if err := await(t, c, func(done func(error)) error {
		return n.CreateTopic("t", 6, 3, nil, func(_ TopicID, err error) { done(err) })
	}); err != nil {
		t.Fatal(err)
	}
	f := func(id int32, epoch int64, want *kerr.Error) {
		t.Helper()
		err := await(t, c, func(done func(error)) error { return n.ControlledShutdown(id, epoch, done) })
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("ControlledShutdown(%d, %d) = %v, want %v", id, epoch, err, want)
		}
	}
	f(1, epochs[1]+1, kerr.StaleBrokerEpoch)
	f(7, 1, kerr.BrokerIDNotRegistered)
	f(1, epochs[1], nil)
	check := func() {
		t.Helper()
		n.Read(func(s *State) {
			if !s.Brokers[1].Fenced {
				t.Fatal("broker 1 not fenced after its controlled shutdown")
			}
			for i, p := range s.Topics["t"].Partitions {
				if p.Leader == 1 || p.Leader == NoLeader || slices.Contains(p.ISR, 1) {
					t.Fatalf("partition %d after shutting down 1: %+v", i, p)
				}
			}
		})
	}
	check()
	f(1, epochs[1], nil) // again: already fenced, fine
	// A heartbeat still in flight from the leaving broker must not unfence it.
	heartbeat(t, c, l, epochs, nil)
	c.tick(2)
	check()
}

// TestControlledShutdownWaitsForInflight: a shutdown arriving while the broker's unfence is in flight is decided
// once that lands, so the broker ends fenced.
func TestControlledShutdownWaitsForInflight(t *testing.T) {
	c := newCluster(t, 1, nil)
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 2, 1)
	n := c.nodes[l]
	if err := await(t, c, func(done func(error)) error { return n.ControlledShutdown(1, epochs[1], done) }); err != nil {
		t.Fatal(err)
	}
	// Broker 1 is back (new registration), and its unfence is proposed but not applied when it shuts down.
	var epoch int64
	if err := await(t, c, func(done func(error)) error {
		return n.RegisterBroker(RegisterBroker{ID: 1, Incarnation: "again", Listeners: []Endpoint{{Name: "P", Host: "h", Port: 1}}},
			func(e int64, err error) { epoch = e; done(err) })
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Heartbeat(HeartbeatRequest{BrokerID: 1, BrokerEpoch: epoch, MetadataOffset: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	if err := await(t, c, func(done func(error)) error { return n.ControlledShutdown(1, epoch, done) }); err != nil {
		t.Fatal(err)
	}
	c.tick(2)
	n.Read(func(s *State) {
		if !s.Brokers[1].Fenced {
			t.Fatal("broker 1 unfenced after a controlled shutdown that raced its unfence")
		}
	})
}

func TestBrokerDisconnected(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 3, 1)
	n := c.nodes[l]
	fenced := func(id int32) (f bool) {
		n.Read(func(s *State) { f = s.Brokers[id].Fenced })
		return f
	}
	n.BrokerDisconnected(0, epochs[0]+1) // another incarnation's connection: nothing
	for _, id := range c.ids {
		if id != l {
			c.nodes[id].BrokerDisconnected(0, epochs[0]) // not the active controller: nothing
		}
	}
	c.tick(2)
	if fenced(0) {
		t.Fatal("broker 0 fenced by a stale epoch or a follower controller")
	}
	n.BrokerDisconnected(0, epochs[0])
	c.tick(2)
	if !fenced(0) {
		t.Fatal("broker 0 not fenced after its connection closed")
	}
	// While its unfence is in flight: fenced once the unfence lands.
	heartbeat(t, c, l, map[int32]int64{0: epochs[0]}, nil)
	n.BrokerDisconnected(0, epochs[0])
	c.tick(3)
	if !fenced(0) {
		t.Fatal("broker 0 not fenced after a disconnect during its unfence")
	}
	// Same, but a heartbeat (it reconnected elsewhere) shows it alive first: it stays unfenced.
	heartbeat(t, c, l, map[int32]int64{0: epochs[0]}, nil)
	n.BrokerDisconnected(0, epochs[0])
	heartbeat(t, c, l, map[int32]int64{0: epochs[0]}, nil)
	c.tick(3)
	if fenced(0) {
		t.Fatal("broker 0 fenced although it heartbeated after the disconnect")
	}
}

func TestSessionGraceAfterFailover(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SessionGrace = tickEvery * 10 })
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 2, 1)
	c.crash(l) // broker 1 "died with it": it never heartbeats the next controller
	rest := slices.DeleteFunc(slices.Clone(c.ids), func(id uint64) bool { return id == l })
	l2 := c.leader(rest, maxElectTicks)
	for i := 0; i < 15; i++ { // 1.5 s: broker 0 heartbeats, broker 1 is silent
		heartbeat(t, c, l2, epochs, []int32{1})
		c.tick(1)
	}
	c.nodes[l2].Read(func(s *State) {
		if s.Brokers[0].Fenced || !s.Brokers[1].Fenced {
			t.Fatalf("after the grace: broker 0 fenced=%v (want false), broker 1 fenced=%v (want true)",
				s.Brokers[0].Fenced, s.Brokers[1].Fenced)
		}
	})
	// Broker 0, past its first heartbeat, has the full session: 5 s of silence do not fence it.
	c.tick(50)
	c.nodes[l2].Read(func(s *State) {
		if s.Brokers[0].Fenced {
			t.Fatal("broker 0 fenced inside its normal session")
		}
	})
}
