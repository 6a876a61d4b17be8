package ctrl

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Tests of what makes a controller failover fast (failover.go, startSessions): the voters' shorter grace, fencing
// a broker whose voter refused connections, and the Client dropping calls stuck on a controller that stopped.

// fencedIn reports each broker's fencing in node id's state.
func fencedIn(c *cluster, id uint64) map[int32]bool {
	out := map[int32]bool{}
	c.nodes[id].Read(func(s *State) {
		for bid, b := range s.Brokers {
			out[bid] = b.Fenced
		}
	})
	return out
}

// register registers broker id on the active controller l and returns its epoch.
func register(t *testing.T, c *cluster, l uint64, id int32, incarnation string) int64 {
	t.Helper()
	var epoch int64
	var rerr error
	r := RegisterBroker{ID: id, Incarnation: incarnation, Listeners: []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092 + id}}}
	if err := c.nodes[l].RegisterBroker(r, func(e int64, err error) { epoch, rerr = e, err }); err != nil {
		t.Fatal(err)
	}
	c.tick(2)
	if rerr != nil || epoch == 0 {
		t.Fatalf("register broker %d: epoch %d, %v", id, epoch, rerr)
	}
	return epoch
}

// failover crashes the active controller l and returns the next one among the live rest.
func failover(c *cluster, l uint64) uint64 {
	c.t.Helper()
	c.crash(l)
	return c.leader(slices.DeleteFunc(slices.Clone(c.ids), func(id uint64) bool { return c.nodes[id] == nil }), maxElectTicks)
}

func TestVoterSessionGrace(t *testing.T) {
	// Brokers 0-2 run in voters 1-3 (RaftID); broker 7 is broker-only. Grace: 5 ticks for voters, 30 for others.
	c := newCluster(t, 3, func(cfg *Config) { cfg.SessionGrace, cfg.VoterSessionGrace = 30*tickEvery, 5*tickEvery })
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 3, 1)
	epochs[7] = register(t, c, l, 7, "inc-7")
	heartbeat(t, c, l, epochs, nil)
	c.tick(2)
	dead := int32(l - 1) // died with the controller
	live := slices.DeleteFunc([]int32{0, 1, 2}, func(id int32) bool { return id == dead })
	l2 := failover(c, l)
	// The surviving voter-brokers heartbeat; the dead one and broker 7 are silent.
	for range 8 {
		heartbeat(t, c, l2, epochs, []int32{dead, 7})
		c.tick(1)
	}
	f := fencedIn(c, l2)
	if !f[dead] || f[live[0]] || f[live[1]] || f[7] {
		t.Fatalf("8 ticks after the failover: fenced %v; want only broker %d (voter grace 5 ticks)", f, dead)
	}
	for range 25 {
		heartbeat(t, c, l2, epochs, []int32{dead, 7})
		c.tick(1)
	}
	if f := fencedIn(c, l2); !f[7] || f[live[0]] || f[live[1]] {
		t.Fatalf("33 ticks after the failover: fenced %v; want broker 7 too (its grace: 30 ticks)", f)
	}
}

func TestRefusedVoterFencedAtOnce(t *testing.T) {
	grace := 20 * tickEvery
	c := newCluster(t, 5, func(cfg *Config) { cfg.SessionGrace, cfg.VoterSessionGrace = grace, grace })
	l := c.leader(c.ids, maxElectTicks)
	epochs := registerBrokers(t, c, l, 5, 1)
	dead := int32(l - 1)
	rest := slices.DeleteFunc(slices.Clone(c.ids), func(id uint64) bool { return id == l })
	// The process of voter l (and broker l-1) is gone: its controller port refuses connections. Every survivor
	// saw it (as their transport and broker clients do between the kill and the election).
	c.crash(l)
	for _, id := range rest {
		c.nodes[id].voterRefused(l)
	}
	l2 := c.leader(rest, maxElectTicks)
	// A live voter-broker whose port refused too (say a firewall resets connections) heartbeats the new
	// controller before its first session check: the refusal must not fence it.
	other := slices.DeleteFunc(slices.Clone(rest), func(id uint64) bool { return id == l2 })[0]
	c.nodes[l2].voterRefused(other)
	heartbeat(t, c, l2, epochs, []int32{dead})
	c.tick(2)
	f := fencedIn(c, l2)
	if !f[dead] {
		t.Fatalf("2 ticks after the failover: broker %d (refused) not fenced; grace is %v", dead, grace)
	}
	for _, id := range rest {
		if f[int32(id-1)] {
			t.Fatalf("broker %d fenced: it heartbeated the new controller (fenced: %v)", id-1, f)
		}
	}

	// A refusal seen before a registration says nothing about the registered process: broker 'dead' comes
	// back (a new epoch), then the controller fails over again; only the grace may fence it now.
	epochs[dead] = register(t, c, l2, dead, "again")
	heartbeat(t, c, l2, epochs, nil)
	c.tick(2)
	if f := fencedIn(c, l2); f[dead] {
		t.Fatal("re-registered broker still fenced after a caught-up heartbeat")
	}
	l3 := failover(c, l2)
	heartbeat(t, c, l3, epochs, []int32{dead, int32(l2 - 1)})
	c.tick(3)
	if f := fencedIn(c, l3); f[dead] {
		t.Fatalf("broker %d fenced 3 ticks after the next failover on a refusal older than its registration", dead)
	}
}

// freeze makes m hang as a SIGSTOPped process does: its connections stay open and accept bytes, nothing is
// answered or processed. The returned func thaws it.
func freeze(m *netMember) func() {
	m.node.mu.Lock()
	return m.node.mu.Unlock
}

func TestNetClientAbandonsStoppedController(t *testing.T) {
	ms, voters := startNetCluster(t, 3, nil)
	a := activeMember(t, ms)
	var b *netMember
	for _, m := range ms {
		if m != a {
			b = m
			break
		}
	}
	cl := NewClient(ClientConfig{Voters: voters, Local: b.node, Logger: testSlog()})
	defer cl.Close()
	epoch := registerLive(t, cl, int32(b.id-1))
	waitFor(t, 5*time.Second, "b following a", func() bool { return b.node.LeaderID() == a.id })

	thaw := freeze(a)
	defer thaw()
	start := time.Now()
	// The call goes to a, which never answers; b's raft elects another leader in 10-20 ticks (200-400 ms).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cl.Heartbeat(ctx, HeartbeatRequest{BrokerID: int32(b.id - 1), BrokerEpoch: epoch, MetadataOffset: 1 << 40})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("heartbeat across a stopped controller: %v (after %v)", err, took)
	}
	lead := b.node.LeaderID()
	if lead == a.id || lead == 0 {
		t.Fatalf("heartbeat answered while b's leader is %d (the stopped one is %d)", lead, a.id)
	}
	if took > 5*time.Second {
		t.Fatalf("heartbeat took %v: it waited on the stopped controller instead of following the new leader", took)
	}
}

func TestNetKilledVoterFencedAtOnce(t *testing.T) {
	// Graces far longer than the test waits: only the refused connections can fence the dead broker in time.
	ms, voters := startNetCluster(t, 3, func(cfg *Config) { cfg.SessionGrace, cfg.VoterSessionGrace = 20*time.Second, 20*time.Second })
	a := activeMember(t, ms)
	clients := map[uint64]*Client{}
	epochs := map[uint64]int64{}
	for _, m := range ms {
		cl := NewClient(ClientConfig{Voters: voters, Local: m.node, Logger: testSlog()})
		defer cl.Close()
		clients[m.id] = cl
		epochs[m.id] = registerLive(t, cl, int32(m.id-1))
	}
	// The survivors' brokers heartbeat every 50 ms, as node's loop does.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, m := range ms {
		if m == a {
			continue
		}
		go func() {
			for ctx.Err() == nil {
				hctx, hcancel := context.WithTimeout(ctx, time.Second)
				_, _ = clients[m.id].Heartbeat(hctx, HeartbeatRequest{BrokerID: int32(m.id - 1), BrokerEpoch: epochs[m.id],
					MetadataOffset: 1 << 40})
				hcancel()
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	a.kill() // its listener closes: dials to it are refused from now on
	var rest []*netMember
	for _, m := range ms {
		if m != a {
			rest = append(rest, m)
		}
	}
	b := activeMember(t, rest)
	elected := time.Now()
	fenced := func(id int32) (f bool) {
		b.node.Read(func(s *State) { f = s.Brokers[id].Fenced })
		return f
	}
	waitFor(t, 3*time.Second, "the killed voter's broker fenced", func() bool { return fenced(int32(a.id - 1)) })
	t.Logf("broker %d fenced %v after the election (grace %v)", a.id-1, time.Since(elected).Round(time.Millisecond), 20*time.Second)
	for _, m := range rest {
		if fenced(int32(m.id - 1)) {
			t.Fatalf("live broker %d fenced", m.id-1)
		}
	}
}
