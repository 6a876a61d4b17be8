package ctrl

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// reassignCluster is one voter with brokers 0..3 registered and unfenced and topic "r" of one partition per
// replica list given, the first replica leading and every replica in the ISR.
func reassignCluster(t *testing.T, parts ...[]int32) (*cluster, *Node, map[int32]int64) {
	t.Helper()
	c := newCluster(t, 1, nil)
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 4, 1)
	ct := &CreateTopic{Name: "r", ID: TopicID{7}}
	for _, rs := range parts {
		ct.Partitions = append(ct.Partitions, PartitionInit{Replicas: rs, ISR: rs, Leader: rs[0]})
	}
	if _, err, _ := c.propose(l, Record{Type: TypeCreateTopic, CreateTopic: ct}, 10); err != nil {
		t.Fatal(err)
	}
	return c, c.nodes[l], epochs
}

// reassign runs AlterReassignments to completion and returns its per-partition codes (0 = accepted).
func reassign(t *testing.T, c *cluster, n *Node, allowRF bool, targets ...ReassignTarget) map[string]map[int32]int16 {
	t.Helper()
	var res map[string]map[int32]error
	if err := await(t, c, func(done func(error)) error {
		return n.AlterReassignments(targets, allowRF, func(r map[string]map[int32]error) { res = r; done(nil) })
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

func mustReassign(t *testing.T, c *cluster, n *Node, target ReassignTarget) {
	t.Helper()
	if got := reassign(t, c, n, true, target); got[target.Topic][target.Partition] != 0 {
		t.Fatalf("reassign %+v: %v", target, got)
	}
}

// expandISR sends the leader's AlterPartition for r-i with isr, as a leader does once followers caught up.
func expandISR(t *testing.T, c *cluster, n *Node, epochs map[int32]int64, i int32, isr ...int32) {
	t.Helper()
	p := partition(n, "r", i)
	req := AlterPartitionRequest{BrokerID: p.Leader, BrokerEpoch: epochs[p.Leader], Topic: "r", TopicID: TopicID{7},
		Partition: i, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: isr}
	if err := await(t, c, func(done func(error)) error {
		return n.AlterPartition(req, func(_ *ChangePartition, err error) { done(err) })
	}); err != nil {
		t.Fatalf("AlterPartition %v: %v", isr, err)
	}
	c.tick(1) // the completion, if any, is proposed after the apply and lands on the next cycles
}

// wantPartition checks replicas, adding, removing, ISR and leader of r-i.
func wantPartition(t *testing.T, n *Node, i int32, replicas, adding, removing, isr []int32, leader int32) Partition {
	t.Helper()
	p := partition(n, "r", i)
	if !slices.Equal(p.Replicas, replicas) || !slices.Equal(p.AddingReplicas, adding) ||
		!slices.Equal(p.RemovingReplicas, removing) || !slices.Equal(p.ISR, isr) || p.Leader != leader {
		t.Fatalf("r-%d: %+v, want replicas %v adding %v removing %v isr %v leader %d", i, p, replicas, adding, removing, isr, leader)
	}
	return p
}

// TestReassignMovesPartition: a partition on broker 0 alone moves to 1,2. The new replicas join as followers out
// of the ISR; when the leader's AlterPartition put the last of them in sync, the controller completes on its own:
// the removed leader hands over to the first target replica in a new leader epoch.
func TestReassignMovesPartition(t *testing.T) {
	c, n, epochs := reassignCluster(t, ids(0))
	before := partition(n, "r", 0)
	mustReassign(t, c, n, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(1, 2)})
	p := wantPartition(t, n, 0, ids(1, 2, 0), ids(1, 2), ids(0), ids(0), 0)
	if p.LeaderEpoch != before.LeaderEpoch || p.PartitionEpoch != before.PartitionEpoch+1 {
		t.Fatalf("epochs after start %d/%d, before %d/%d", p.LeaderEpoch, p.PartitionEpoch, before.LeaderEpoch, before.PartitionEpoch)
	}
	if got, _ := n.ListReassignments(nil); len(got) != 1 || !slices.Equal(got[0].Adding, ids(1, 2)) || !slices.Equal(got[0].Removing, ids(0)) {
		t.Fatalf("ListReassignments: %+v", got)
	}
	expandISR(t, c, n, epochs, 0, 0, 1) // 2 still catching up: nothing completes
	wantPartition(t, n, 0, ids(1, 2, 0), ids(1, 2), ids(0), ids(0, 1), 0)
	expandISR(t, c, n, epochs, 0, 0, 1, 2)
	p = wantPartition(t, n, 0, ids(1, 2), nil, nil, ids(1, 2), 1)
	if p.LeaderEpoch != before.LeaderEpoch+1 {
		t.Fatalf("leader epoch %d after the leader moved, want %d", p.LeaderEpoch, before.LeaderEpoch+1)
	}
	if got, _ := n.ListReassignments(map[string][]int32{"r": {0}}); len(got) != 0 {
		t.Fatalf("ListReassignments after completion: %+v", got)
	}
}

// TestReassignKeepsLeader: a leader that stays keeps its leader epoch; a change committed by any record (here a
// plain ChangePartition, not AlterPartition) that completes the ISR completes the reassignment; a target that only
// drops replicas completes in the record that starts it.
func TestReassignKeepsLeader(t *testing.T) {
	c, n, _ := reassignCluster(t, ids(0, 1), ids(0, 1, 2))
	before := partition(n, "r", 0)
	mustReassign(t, c, n, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(0, 3)})
	wantPartition(t, n, 0, ids(0, 3, 1), ids(3), ids(1), ids(0, 1), 0)
	setPartition(t, c, n, "r", 0, 0, 0, 1, 3)
	c.tick(1)
	p := wantPartition(t, n, 0, ids(0, 3), nil, nil, ids(0, 3), 0)
	if p.LeaderEpoch != before.LeaderEpoch {
		t.Fatalf("leader epoch moved %d -> %d with the same leader", before.LeaderEpoch, p.LeaderEpoch)
	}
	mustReassign(t, c, n, ReassignTarget{Topic: "r", Partition: 1, Replicas: ids(2, 1)})
	wantPartition(t, n, 1, ids(2, 1), nil, nil, ids(1, 2), 2)
	if got, _ := n.ListReassignments(nil); len(got) != 0 {
		t.Fatalf("reassignments left: %+v", got)
	}
}

// TestReassignCancel: cancelling reverts to the original replicas, moving leadership back from a replica being
// added; a second cancel has nothing to cancel.
func TestReassignCancel(t *testing.T) {
	c, n, epochs := reassignCluster(t, ids(0))
	mustReassign(t, c, n, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(1, 2)})
	expandISR(t, c, n, epochs, 0, 0, 1)
	// A preferred election hands leadership to 1, the first target replica, while 2 catches up.
	if got := elect(t, c, n, false, map[string][]int32{"r": {0}}); got["r"][0] != 0 {
		t.Fatalf("preferred election: %v", got)
	}
	led := wantPartition(t, n, 0, ids(1, 2, 0), ids(1, 2), ids(0), ids(0, 1), 1)
	mustReassign(t, c, n, ReassignTarget{Topic: "r", Partition: 0}) // null replicas: cancel
	p := wantPartition(t, n, 0, ids(0), nil, nil, ids(0), 0)
	if p.LeaderEpoch != led.LeaderEpoch+1 {
		t.Fatalf("leader epoch %d after cancel moved leadership, want %d", p.LeaderEpoch, led.LeaderEpoch+1)
	}
	if got := reassign(t, c, n, true, ReassignTarget{Topic: "r", Partition: 0}); got["r"][0] != kerr.NoReassignmentInProgress.Code {
		t.Fatalf("second cancel: %v", got)
	}
}

// TestReassignBadInput: Kafka's codes for every refusal, decided per partition; the valid target in the same
// request still goes through.
func TestReassignBadInput(t *testing.T) {
	c, n, epochs := reassignCluster(t, ids(0, 1), ids(1, 2))
	n.BrokerDisconnected(3, epochs[3])
	c.tick(2)
	got := reassign(t, c, n, true,
		ReassignTarget{Topic: "r", Partition: 0, Replicas: []int32{}},
		ReassignTarget{Topic: "r", Partition: 1, Replicas: ids(1, 1)},
		ReassignTarget{Topic: "r", Partition: 2},
		ReassignTarget{Topic: "r", Partition: -1, Replicas: ids(1)},
		ReassignTarget{Topic: "nope", Partition: 0, Replicas: ids(1)},
	)
	want := map[string]map[int32]int16{
		"r":    {0: kerr.InvalidReplicaAssignment.Code, 1: kerr.InvalidReplicaAssignment.Code, 2: kerr.UnknownTopicOrPartition.Code, -1: kerr.UnknownTopicOrPartition.Code},
		"nope": {0: kerr.UnknownTopicOrPartition.Code},
	}
	if !equalCodes(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	f := func(allowRF bool, target ReassignTarget, want *kerr.Error) {
		t.Helper()
		got := reassign(t, c, n, allowRF, target)[target.Topic][target.Partition]
		if code := int16(0); want != nil && got != want.Code || want == nil && got != code {
			t.Fatalf("reassign %+v (allowRF %v): code %d, want %v", target, allowRF, got, want)
		}
	}
	f(true, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(0, 9)}, kerr.InvalidReplicaAssignment) // unknown broker
	f(true, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(0, 3)}, kerr.InvalidReplicaAssignment) // fenced broker
	f(true, ReassignTarget{Topic: "r", Partition: 0}, kerr.NoReassignmentInProgress)
	f(false, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(0, 1, 2)}, kerr.InvalidReplicationFactor)
	f(true, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(0, 1)}, nil) // as it is: nothing to do
	f(false, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(0, 2)}, nil)
	got = reassign(t, c, n, true, ReassignTarget{Topic: "r", Partition: 1, Replicas: ids(0)},
		ReassignTarget{Topic: "r", Partition: 1, Replicas: ids(2)})
	if got["r"][1] != kerr.InvalidRequest.Code {
		t.Fatalf("partition named twice: %v", got)
	}
	wantPartition(t, n, 1, ids(1, 2), nil, nil, ids(1, 2), 1)
	if got, _ := n.ListReassignments(nil); len(got) != 1 || got[0].Partition != 0 {
		t.Fatalf("reassignments: %+v, want r-0's alone", got)
	}
}

// TestUnregisterBroker: decommissioning is refused while the broker runs or holds a replica (a replica being
// added counts); once its replicas moved away and it is fenced, it leaves the metadata.
func TestUnregisterBroker(t *testing.T) {
	c, n, epochs := reassignCluster(t, ids(0))
	f := func(id int32, want *kerr.Error) {
		t.Helper()
		err := await(t, c, func(done func(error)) error { return n.UnregisterBroker(id, done) })
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("UnregisterBroker(%d) = %v, want %v", id, err, want)
		}
	}
	f(9, kerr.BrokerIDNotRegistered)
	f(0, kerr.InvalidRequest) // unfenced, leads r-0
	mustReassign(t, c, n, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(1)})
	if err := await(t, c, func(done func(error)) error { return n.ControlledShutdown(1, epochs[1], done) }); err != nil {
		t.Fatal(err)
	}
	f(1, kerr.InvalidRequest) // fenced, but being added to r-0
	mustReassign(t, c, n, ReassignTarget{Topic: "r", Partition: 0})
	f(1, nil)
	n.BrokerDisconnected(0, epochs[0])
	c.tick(2)
	f(0, kerr.InvalidRequest) // fenced, still the (offline) replica of r-0
	n.Read(func(s *State) {
		if s.Brokers[1] != nil || s.Brokers[0] == nil {
			t.Fatalf("brokers after unregistering 1: %v", s.Brokers)
		}
	})
	if _, err := n.Heartbeat(HeartbeatRequest{BrokerID: 1, BrokerEpoch: epochs[1]}); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatalf("heartbeat of an unregistered broker: %v", err)
	}
	c.converged()
}

// TestReassignCompletedByNextController: the active controller applies the ISR change that completes a
// reassignment's ISR and is cut off before its completion reaches anyone; the next active controller completes it.
func TestReassignCompletedByNextController(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SessionTimeout = time.Hour }) // elections must not fence brokers
	l := c.leader(c.ids, maxElectTicks)
	registerBrokers(t, c, l, 2, 1)
	n := c.nodes[l]
	ct := &CreateTopic{Name: "r", ID: TopicID{7}, Partitions: []PartitionInit{{Replicas: ids(0), ISR: ids(0), Leader: 0}}}
	if _, err, _ := c.propose(l, Record{Type: TypeCreateTopic, CreateTopic: ct}, 10); err != nil {
		t.Fatal(err)
	}
	mustReassign(t, c, n, ReassignTarget{Topic: "r", Partition: 0, Replicas: ids(1)})
	p := partition(n, "r", 0)
	full := Record{Type: TypeChangePartition, ChangePartition: &ChangePartition{Topic: "r", ID: TopicID{7},
		PartitionEpoch: p.PartitionEpoch, Leader: 0, ISR: ids(0, 1)}}
	if err := n.Propose(full, nil); err != nil {
		t.Fatal(err)
	}
	// Step by step until the leader applied it (and so proposed the completion), then cut it off.
	for round := 0; round < 100 && len(partition(n, "r", 0).ISR) < 2; round++ {
		for _, id := range c.ids {
			for {
				did, err := c.nodes[id].Process()
				if err != nil {
					t.Fatal(err)
				}
				if !did {
					break
				}
			}
		}
		if len(partition(n, "r", 0).ISR) < 2 {
			c.net.Deliver()
		}
	}
	wantPartition(t, n, 0, ids(1, 0), ids(1), ids(0), ids(0, 1), 0)
	var others []uint64
	for _, id := range c.ids {
		if id != l {
			others = append(others, id)
		}
	}
	c.net.Partition([]uint64{l})
	nl := c.leader(others, maxElectTicks)
	c.tick(3)
	wantPartition(t, c.nodes[nl], 0, ids(1), nil, nil, ids(1), 1)
	c.net.Heal()
	c.tick(30)
	c.converged()
}
