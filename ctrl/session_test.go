package ctrl

import (
	"fmt"
	"slices"
	"testing"
)

// registerBrokers registers brokers 0..n-1 (rack r<i%racks>) on the active controller l and unfences them.
func registerBrokers(t *testing.T, c *cluster, l uint64, n, racks int) map[int32]int64 {
	t.Helper()
	epochs := map[int32]int64{}
	for i := int32(0); i < int32(n); i++ {
		r := RegisterBroker{ID: i, Incarnation: fmt.Sprint("inc-", i), Rack: fmt.Sprint("r", int(i)%racks),
			Listeners: []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092 + i}}}
		if err := c.nodes[l].RegisterBroker(r, func(e int64, err error) {
			if err != nil {
				t.Errorf("register %d: %v", i, err)
			}
			epochs[i] = e
		}); err != nil {
			t.Fatal(err)
		}
	}
	c.tick(2)
	heartbeat(t, c, l, epochs, nil)
	c.tick(2)
	c.nodes[l].Read(func(s *State) {
		if len(s.LiveBrokers()) != n {
			t.Fatalf("%d live brokers after registration, want %d", len(s.LiveBrokers()), n)
		}
	})
	return epochs
}

// heartbeat sends one heartbeat from every broker in epochs except those in skip, each fully caught up.
func heartbeat(t *testing.T, c *cluster, l uint64, epochs map[int32]int64, skip []int32) {
	t.Helper()
	for id, e := range epochs {
		if slices.Contains(skip, id) {
			continue
		}
		if _, err := c.nodes[l].Heartbeat(HeartbeatRequest{BrokerID: id, BrokerEpoch: e, MetadataOffset: 1 << 40}); err != nil {
			t.Fatalf("heartbeat %d: %v", id, err)
		}
	}
}

func TestSessionExpiryFencesAndMovesLeadership(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 3, 3)
	if err := c.nodes[l].CreateTopic("t", 6, 3, nil, func(_ TopicID, err error) {
		if err != nil {
			t.Errorf("create: %v", err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	c.tick(2)
	// Broker 2 goes silent; the others heartbeat every 2 s (20 ticks). Session timeout is 9 s = 90 ticks.
	for i := 0; i < 12; i++ {
		heartbeat(t, c, l, epochs, []int32{2})
		c.tick(10)
	}
	c.tick(3)
	c.converged()
	c.nodes[l].Read(func(s *State) {
		if !s.Brokers[2].Fenced || s.Brokers[0].Fenced || s.Brokers[1].Fenced {
			t.Fatalf("fenced: 0=%v 1=%v 2=%v, want only 2", s.Brokers[0].Fenced, s.Brokers[1].Fenced, s.Brokers[2].Fenced)
		}
		for i, p := range s.Topics["t"].Partitions {
			if p.Leader == 2 || p.Leader == NoLeader || slices.Contains(p.ISR, 2) || len(p.ISR) != 2 {
				t.Fatalf("partition %d after fencing 2: %+v", i, p)
			}
			if p.LeaderEpoch == 0 && p.Replicas[0] == 2 {
				t.Fatalf("partition %d changed leader without bumping the leader epoch: %+v", i, p)
			}
			if p.PartitionEpoch != 1 {
				t.Fatalf("partition %d: partition epoch %d, want 1", i, p.PartitionEpoch)
			}
		}
	})
	// Broker 2 comes back: its heartbeat, caught up, unfences it (it rejoins ISRs through AlterPartition, not here).
	heartbeat(t, c, l, epochs, nil)
	c.tick(2)
	c.nodes[l].Read(func(s *State) {
		if s.Brokers[2].Fenced {
			t.Fatal("broker 2 still fenced after a caught-up heartbeat")
		}
	})
}

func TestSessionNewControllerGivesGrace(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 2, 1)
	for i := 0; i < 5; i++ { // 5 s of heartbeats
		heartbeat(t, c, l, epochs, nil)
		c.tick(10)
	}
	c.crash(l)
	rest := slices.DeleteFunc(slices.Clone(c.ids), func(id uint64) bool { return id == l })
	l2 := c.leader(rest, maxElectTicks)
	// The brokers now heartbeat to the new controller; none must have been fenced by the failover.
	for i := 0; i < 12; i++ {
		heartbeat(t, c, l2, epochs, nil)
		c.tick(10)
	}
	c.nodes[l2].Read(func(s *State) {
		for id, b := range s.Brokers {
			if b.Fenced {
				t.Fatalf("broker %d fenced across a controller failover despite heartbeats", id)
			}
		}
	})
}
