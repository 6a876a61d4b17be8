package ctrl

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestRaftElectsAndReplicates(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(c.ids, maxElectTicks)
	for i := 0; i < 20; i++ {
		if _, err, ok := c.propose(l, configRec("k", fmt.Sprint(i)), 10); !ok || err != nil {
			t.Fatalf("proposal %d: done=%v err=%v", i, ok, err)
		}
	}
	c.tick(3)
	c.converged()
	c.nodes[1].Read(func(s *State) {
		if got := s.BrokerConfigs[""]["k"]; got != "19" {
			t.Fatalf("k=%q, want 19", got)
		}
	})
	// A follower refuses proposals: only the active controller decides.
	f := c.ids[0]
	if f == l {
		f = c.ids[1]
	}
	if err := c.nodes[f].Propose(configRec("k", "x"), nil); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower propose: %v, want ErrNotLeader", err)
	}
}

func TestRaftInvalidRecordRejectedEverywhere(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(c.ids, maxElectTicks)
	// Well-formed but invalid: a topic on brokers nobody registered. Committed, rejected by every Apply alike.
	bad := Record{Type: TypeCreateTopic, CreateTopic: &CreateTopic{Name: "t", ID: TopicID{1},
		Partitions: []PartitionInit{{Replicas: []int32{7}, ISR: []int32{7}, Leader: 7}}}}
	_, err, ok := c.propose(l, bad, 10)
	if !ok || !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("done=%v err=%v, want ErrInvalidRecord", ok, err)
	}
	c.tick(3)
	c.converged()
	c.nodes[l].Read(func(s *State) {
		if len(s.Topics) != 0 {
			t.Fatalf("rejected record changed state: %v", s.Topics)
		}
	})
}

func TestRaftLeaderCrashNoLoss(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(c.ids, maxElectTicks)
	for i := 0; i < 5; i++ {
		if _, err, _ := c.propose(l, configRec(fmt.Sprint("k", i), "v"), 10); err != nil {
			t.Fatal(err)
		}
	}
	c.crash(l)
	rest := slices.DeleteFunc(slices.Clone(c.ids), func(id uint64) bool { return id == l })
	// Election timeout is 10..19 ticks; a new leader must appear within a few timeouts.
	l2 := c.leader(rest, maxElectTicks)
	if _, err, _ := c.propose(l2, configRec("after", "v"), 10); err != nil {
		t.Fatal(err)
	}
	c.tick(2)
	c.converged()
	c.nodes[l2].Read(func(s *State) {
		for i := 0; i < 5; i++ {
			if s.BrokerConfigs[""][fmt.Sprint("k", i)] != "v" {
				t.Fatalf("committed k%d lost after leader crash", i)
			}
		}
	})
	// The crashed one comes back from its WAL and catches up.
	c.start(l)
	c.tick(5)
	c.converged()
}

func TestRaftPartitionedLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(c.ids, maxElectTicks)
	rest := slices.DeleteFunc(slices.Clone(c.ids), func(id uint64) bool { return id == l })
	c.net.Partition([]uint64{l}, rest)
	// The minority leader accepts a proposal but cannot commit it; it steps down (CheckQuorum) and the proposer
	// learns leadership was lost.
	var minErr error
	minDone := false
	if err := c.nodes[l].Propose(configRec("minority", "v"), func(_ uint64, err error) { minErr, minDone = err, true }); err != nil {
		t.Fatal(err)
	}
	l2 := c.leader(rest, maxElectTicks)
	if _, err, _ := c.propose(l2, configRec("majority", "v"), 10); err != nil {
		t.Fatal(err)
	}
	c.tick(25)
	if !minDone || !errors.Is(minErr, ErrLeadershipLost) {
		t.Fatalf("minority proposal: done=%v err=%v, want ErrLeadershipLost", minDone, minErr)
	}
	if _, _, active := c.nodes[l].Status(); active {
		t.Fatal("isolated old leader still believes it is active")
	}
	c.net.Heal()
	c.tick(10)
	c.converged()
	c.nodes[l].Read(func(s *State) {
		if s.BrokerConfigs[""]["minority"] != "" || s.BrokerConfigs[""]["majority"] != "v" {
			t.Fatalf("after heal: %v", s.BrokerConfigs)
		}
	})
}

func TestRaftLossyDelayedNetwork(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.net.SetDropRate(0.2)
	c.net.SetDelay(1)
	committed := 0
	for i := 0; i < 30 && committed < 10; i++ {
		l := c.leader(c.ids, maxElectTicks)
		if _, err, ok := c.propose(l, configRec(fmt.Sprint("k", committed), "v"), 30); ok && err == nil {
			committed++
		}
	}
	if committed < 10 {
		t.Fatalf("only %d proposals committed on a 20%% lossy network", committed)
	}
	c.net.Heal()
	c.tick(10)
	c.converged()
	if _, dropped := c.net.Stats(); dropped == 0 {
		t.Fatal("the lossy network dropped nothing; the test proves nothing")
	}
}

func TestRaftRestartFromWALAndSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEvery = 8 })
	l := c.leader(c.ids, maxElectTicks)
	for i := 0; i < 30; i++ {
		if _, err, _ := c.propose(l, configRec(fmt.Sprint("k", i), "v"), 10); err != nil {
			t.Fatal(err)
		}
	}
	c.tick(3)
	before := c.snapshotOf(l)
	for _, id := range c.ids {
		c.crash(id)
	}
	for _, id := range c.ids {
		nd := c.start(id)
		var applied uint64
		nd.Read(func(s *State) { applied = s.AppliedIndex })
		if applied < 8 {
			t.Fatalf("node %d restarted at applied %d: snapshot not used", id, applied)
		}
	}
	l = c.leader(c.ids, maxElectTicks)
	c.tick(3)
	c.converged()
	after := c.snapshotOf(l)
	var s1, s2 *State
	s1, _ = UnmarshalSnapshot(before)
	s2, _ = UnmarshalSnapshot(after)
	if len(s2.BrokerConfigs[""]) != 30 || len(s1.BrokerConfigs[""]) != 30 {
		t.Fatalf("configs before %d after %d, want 30", len(s1.BrokerConfigs[""]), len(s2.BrokerConfigs[""]))
	}
}

func TestRaftSnapshotInstallForLaggingFollower(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEvery = 10 })
	l := c.leader(c.ids, maxElectTicks)
	lag := c.ids[0]
	if lag == l {
		lag = c.ids[1]
	}
	c.crash(lag)
	for i := 0; i < 40; i++ {
		if _, err, _ := c.propose(l, configRec(fmt.Sprint("k", i), "v"), 10); err != nil {
			t.Fatal(err)
		}
	}
	var first uint64
	c.nodes[l].Read(func(*State) { first, _ = c.nodes[l].storage.FirstIndex() })
	if first <= 2 {
		t.Fatalf("leader log not compacted (first index %d); the follower would not need a snapshot", first)
	}
	c.start(lag)
	c.tick(10)
	c.converged()
	if c.nodes[lag].snapIndex < 10 {
		t.Fatalf("lagging follower did not install a snapshot (snap index %d)", c.nodes[lag].snapIndex)
	}
}
