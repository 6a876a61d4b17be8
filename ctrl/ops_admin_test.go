package ctrl

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// await starts an operation and ticks the cluster until its callback ran; it returns the synchronous error or the
// callback's. Callbacks run on the test goroutine (settle calls Process), so results need no locking.
func await(t *testing.T, c *cluster, start func(done func(error)) error) error {
	t.Helper()
	var got error
	called := false
	if err := start(func(err error) { got, called = err, true }); err != nil {
		return err
	}
	for i := 0; i < 20 && !called; i++ {
		c.settle()
		if !called {
			c.tick(1)
		}
	}
	if !called {
		t.Fatal("operation callback never ran")
	}
	return got
}

// adminCluster is one voter with brokers 0..2 registered and unfenced and topic "t" of 2 partitions, RF 2.
func adminCluster(t *testing.T) (*cluster, *Node, map[int32]int64) {
	t.Helper()
	c := newCluster(t, 1, nil)
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 3, 1)
	n := c.nodes[l]
	if err := await(t, c, func(done func(error)) error {
		return n.CreateTopic("t", 2, 2, nil, func(_ TopicID, err error) { done(err) })
	}); err != nil {
		t.Fatal(err)
	}
	return c, n, epochs
}

func TestCreatePartitionsAndDeleteTopic(t *testing.T) {
	c, n, _ := adminCluster(t)
	f := func(name string, total int, want *kerr.Error) {
		t.Helper()
		err := await(t, c, func(done func(error)) error { return n.CreatePartitions(name, total, done) })
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("CreatePartitions(%q, %d) = %v, want %v", name, total, err, want)
		}
	}
	f("t", 5, nil)
	f("t", 5, kerr.InvalidPartitions)
	f("t", 3, kerr.InvalidPartitions)
	f("t", 5+MaxNewPartitions+1, kerr.InvalidPartitions)
	f("nope", 3, kerr.UnknownTopicOrPartition)
	n.Read(func(s *State) {
		ps := s.Topics["t"].Partitions
		if len(ps) != 5 {
			t.Fatalf("%d partitions, want 5", len(ps))
		}
		for i, p := range ps {
			if len(p.Replicas) != 2 || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) || p.Replicas[0] == p.Replicas[1] {
				t.Fatalf("partition %d: %+v, want 2 distinct replicas, all in the ISR, the first leading", i, p)
			}
		}
	})
	del := func(name string, want *kerr.Error) {
		t.Helper()
		err := await(t, c, func(done func(error)) error { return n.DeleteTopic(name, done) })
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("DeleteTopic(%q) = %v, want %v", name, err, want)
		}
	}
	del("t", nil)
	del("t", kerr.UnknownTopicOrPartition)
	n.Read(func(s *State) {
		if len(s.Topics) != 0 {
			t.Fatalf("topics after delete: %v", s.TopicNames())
		}
	})
}

func TestSetConfigs(t *testing.T) {
	c, n, _ := adminCluster(t)
	f := func(rt int8, name string, configs map[string]string, want *kerr.Error) {
		t.Helper()
		err := await(t, c, func(done func(error)) error { return n.SetConfigs(rt, name, configs, done) })
		if want != nil {
			if !errors.Is(err, want) {
				t.Fatalf("SetConfigs(%d, %q, %v) = %v, want %v", rt, name, configs, err, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("SetConfigs(%d, %q, %v): %v", rt, name, configs, err)
		}
		n.Read(func(s *State) {
			got := s.BrokerConfigs[name]
			if rt == ConfigResourceTopic {
				got = s.Topics[name].Configs
			}
			if len(got) != len(configs) || !maps.Equal(got, configs) {
				t.Fatalf("after SetConfigs(%d, %q, %v): %v", rt, name, configs, got)
			}
		})
	}
	f(ConfigResourceTopic, "t", map[string]string{"a": "1", "b": "2"}, nil)
	f(ConfigResourceTopic, "t", map[string]string{"b": "3"}, nil) // replaces: a goes
	f(ConfigResourceTopic, "t", map[string]string{"b": "3"}, nil) // no change: no proposal, still answered
	f(ConfigResourceTopic, "t", nil, nil)
	f(ConfigResourceBroker, "", map[string]string{"log.retention.ms": "1000"}, nil)
	f(ConfigResourceBroker, "2", map[string]string{"x": "y"}, nil)
	f(ConfigResourceBroker, "02", map[string]string{"x": "y"}, kerr.InvalidRequest)
	f(ConfigResourceBroker, "b", nil, kerr.InvalidRequest)
	f(3, "t", nil, kerr.InvalidRequest)
	f(ConfigResourceTopic, "nope", nil, kerr.UnknownTopicOrPartition)
	f(ConfigResourceTopic, "t", map[string]string{"unclean.leader.election.enable": "maybe"}, kerr.InvalidConfig)
	f(ConfigResourceTopic, "t", map[string]string{"": "x"}, kerr.InvalidConfig)
}

// TestSetConfigsUncleanElects: enabling unclean election on a topic elects its offline partitions in the same
// batch.
func TestSetConfigsUncleanElects(t *testing.T) {
	c, n, epochs := adminCluster(t)
	var p Partition
	var id TopicID
	n.Read(func(s *State) { p, id = s.Topics["t"].Partitions[0].clone(), s.Topics["t"].ID })
	lead := p.Leader
	// Shrink the ISR to the leader, then lose the leader: the partition goes offline (unclean is off).
	shrink := Record{Type: TypeChangePartition, ChangePartition: &ChangePartition{Topic: "t", ID: id, Partition: 0,
		PartitionEpoch: p.PartitionEpoch, Leader: lead, ISR: []int32{lead}}}
	if _, err, _ := c.propose(c.ids[0], shrink, 10); err != nil {
		t.Fatal(err)
	}
	n.BrokerDisconnected(lead, epochs[lead])
	c.tick(2)
	n.Read(func(s *State) { p = s.Topics["t"].Partitions[0].clone() })
	if p.Leader != NoLeader {
		t.Fatalf("partition 0 after losing its only ISR member: %+v, want offline", p)
	}
	if err := await(t, c, func(done func(error)) error {
		return n.SetConfigs(ConfigResourceTopic, "t", map[string]string{"unclean.leader.election.enable": "true"}, done)
	}); err != nil {
		t.Fatal(err)
	}
	n.Read(func(s *State) { p = s.Topics["t"].Partitions[0].clone() })
	other := p.Replicas[0] + p.Replicas[1] - lead
	if p.Leader != other || !slices.Equal(p.ISR, []int32{other}) {
		t.Fatalf("partition 0 after enabling unclean election: %+v, want leader %d with ISR [%d]", p, other, other)
	}
}

func TestAllocateProducerIDs(t *testing.T) {
	c, n, _ := adminCluster(t)
	// Three requests in flight at once get consecutive blocks, none rejected.
	var firsts []int64
	for i := 0; i < 3; i++ {
		if err := n.AllocateProducerIDs(1, 0, func(first int64, err error) {
			if err != nil {
				t.Errorf("allocation: %v", err)
			}
			firsts = append(firsts, first)
		}); err != nil {
			t.Fatal(err)
		}
	}
	c.tick(2)
	slices.Sort(firsts)
	if !slices.Equal(firsts, []int64{0, ProducerIDBlockSize, 2 * ProducerIDBlockSize}) {
		t.Fatalf("blocks start at %v", firsts)
	}
	var first int64
	if err := await(t, c, func(done func(error)) error {
		return n.AllocateProducerIDs(2, 10, func(f int64, err error) { first = f; done(err) })
	}); err != nil || first != 3*ProducerIDBlockSize {
		t.Fatalf("4th block: first %d err %v, want %d", first, err, 3*ProducerIDBlockSize)
	}
	n.Read(func(s *State) {
		if s.NextProducerID != 3*ProducerIDBlockSize+10 {
			t.Fatalf("next producer id %d", s.NextProducerID)
		}
	})
	if err := n.AllocateProducerIDs(7, 0, nil); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatalf("unknown broker: %v", err)
	}
	if err := n.AllocateProducerIDs(1, 1<<21, nil); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("huge block: %v", err)
	}
}

func TestOnApplyAndLeaderID(t *testing.T) {
	var calls []uint64
	c := newCluster(t, 1, func(cfg *Config) { cfg.OnApply = func(idx uint64) { calls = append(calls, idx) } })
	l := c.leader(c.ids, maxElectTicks)
	if got := c.nodes[l].LeaderID(); got != l {
		t.Fatalf("LeaderID %d, want %d", got, l)
	}
	idx, err, _ := c.propose(l, configRec("k", "v"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 || calls[len(calls)-1] != idx {
		t.Fatalf("OnApply calls %v, want the last at %d", calls, idx)
	}
	n := len(calls)
	c.tick(3) // nothing applied: no calls
	if len(calls) != n {
		t.Fatalf("OnApply called without anything applied: %v", calls[n:])
	}
	c.nodes[l].Stop()
	if got := c.nodes[l].LeaderID(); got != 0 {
		t.Fatalf("LeaderID after Stop: %d", got)
	}
}
