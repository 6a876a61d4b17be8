package ctrl

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestNetClusterFailover(t *testing.T) {
	ms, voters := startNetCluster(t, 3, nil)
	cl := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	defer cl.Close()
	for id := int32(0); id < 3; id++ {
		registerLive(t, cl, id)
	}
	ctx := ctxFor(t, 10*time.Second)
	if _, err := cl.CreateTopic(ctx, "t", 3, 3, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateTopic(ctx, "t", 3, 3, nil); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("second create: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	converged := func(ms []*netMember) func() bool {
		return func() bool {
			ref := snapshotBytes(t, ms[0].node)
			for _, m := range ms[1:] {
				if !bytes.Equal(ref, snapshotBytes(t, m.node)) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 5*time.Second, "three converged states", converged(ms))

	old := activeMember(t, ms)
	old.kill()
	var rest []*netMember
	for _, m := range ms {
		if m != old {
			rest = append(rest, m)
		}
	}
	// The client's next call finds the new active controller (dead connection, NOT_CONTROLLER hints).
	if _, err := cl.CreateTopic(ctx, "t2", 1, 2, nil); err != nil {
		t.Fatalf("create after failover: %v", err)
	}
	if m := activeMember(t, rest); m == old {
		t.Fatal("killed controller still active")
	}
	waitFor(t, 5*time.Second, "two converged states", converged(rest))
	rest[0].node.Read(func(s *State) {
		if s.Topics["t"] == nil || s.Topics["t2"] == nil {
			t.Fatalf("topics after failover: %v", s.TopicNames())
		}
	})
}

func TestNetDisconnectFencesBroker(t *testing.T) {
	ms, voters := startNetCluster(t, 1, nil)
	n := ms[0].node
	cl1 := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	cl2 := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	defer cl2.Close()
	registerLive(t, cl1, 1)
	e2 := registerLive(t, cl2, 2)
	fenced := func(id int32) (f bool) {
		n.Read(func(s *State) { f = s.Brokers[id].Fenced })
		return f
	}
	start := time.Now()
	cl1.Close() // the broker process died: the kernel closes its sockets
	waitFor(t, time.Second, "broker 1 fenced after its connection closed", func() bool { return fenced(1) })
	t.Logf("fenced %v after the close", time.Since(start))
	if fenced(2) {
		t.Fatal("broker 2, whose connection is open, was fenced")
	}
	// A controlled shutdown over the connection, then the close: fenced once, by the shutdown, no error.
	ctx := ctxFor(t, 5*time.Second)
	if err := cl2.ControlledShutdown(ctx, 2, e2); err != nil {
		t.Fatal(err)
	}
	if !fenced(2) {
		t.Fatal("broker 2 not fenced by its controlled shutdown")
	}
	if err := cl2.ControlledShutdown(ctx, 2, e2+1); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("stale shutdown: %v", err)
	}
	// Heartbeats on a connection no longer mark anything once fenced; other calls keep working.
	if _, err := cl2.Heartbeat(ctx, HeartbeatRequest{BrokerID: 9, BrokerEpoch: 1}); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatalf("heartbeat of an unknown broker: %v", err)
	}
}

// TestNetReconnectedBrokerNotFenced: a broker heartbeating over a new connection before its old one closes is
// not reported gone when the old one does.
func TestNetReconnectedBrokerNotFenced(t *testing.T) {
	ms, voters := startNetCluster(t, 1, nil)
	n := ms[0].node
	old := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	epoch := registerLive(t, old, 1)
	cur := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	defer cur.Close()
	ctx := ctxFor(t, 5*time.Second)
	if _, err := cur.Heartbeat(ctx, HeartbeatRequest{BrokerID: 1, BrokerEpoch: epoch, MetadataOffset: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	fenced := func() (f bool) {
		n.Read(func(s *State) { f = s.Brokers[1].Fenced })
		return f
	}
	old.Close()
	time.Sleep(300 * time.Millisecond)
	if fenced() {
		t.Fatal("broker fenced when a connection closed while another still carries its heartbeats")
	}
	cur.Close()
	waitFor(t, time.Second, "broker fenced after its last connection closed", fenced)
}

func TestNetClientLocal(t *testing.T) {
	ms, voters := startNetCluster(t, 1, nil)
	activeMember(t, ms)
	cl := NewClient(ClientConfig{Voters: voters, Local: ms[0].node, Logger: testSlog()})
	defer cl.Close()
	registerLive(t, cl, 0)
	ctx := ctxFor(t, 5*time.Second)
	if _, err := cl.CreateTopic(ctx, "t", 2, 1, map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreatePartitions(ctx, "t", 1); !errors.Is(err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v", err)
	}
	res, err := cl.ElectLeaders(ctx, false, map[string][]int32{"t": {0}, "x": {0}})
	if err != nil || !errors.Is(res["t"][0], kerr.ElectionNotNeeded) || !errors.Is(res["x"][0], kerr.UnknownTopicOrPartition) {
		t.Fatalf("elect: %v %v", res, err)
	}
	first, err := cl.AllocateProducerIDs(ctx, 0, 0)
	if err != nil || first != 0 {
		t.Fatalf("allocate: %d %v", first, err)
	}
	s, err := cl.FetchMetadata(ctx, 0, 0)
	if err != nil || s.Topics["t"] == nil || s.NextProducerID != ProducerIDBlockSize {
		t.Fatalf("metadata: %+v %v", s, err)
	}
	cl.mu.Lock()
	conns := len(cl.conns)
	cl.mu.Unlock()
	if conns != 0 {
		t.Fatalf("%d network connections although Local is active", conns)
	}
}

// TestNetRemoteOps runs every method over the network against one voter.
func TestNetRemoteOps(t *testing.T) {
	ms, voters := startNetCluster(t, 1, nil)
	cl := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	defer cl.Close()
	epochs := map[int32]int64{0: registerLive(t, cl, 0), 1: registerLive(t, cl, 1)}
	ctx := ctxFor(t, 5*time.Second)
	id, err := cl.CreateTopic(ctx, "t", 2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.CreatePartitions(ctx, "t", 3); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetConfigs(ctx, ConfigResourceTopic, "t", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetConfigs(ctx, ConfigResourceTopic, "nope", nil); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("configs of a missing topic: %v", err)
	}
	a, err := cl.AllocateProducerIDs(ctx, 0, 5)
	b, err2 := cl.AllocateProducerIDs(ctx, 1, 5)
	if err != nil || err2 != nil || a == b {
		t.Fatalf("allocations: %d %v, %d %v", a, err, b, err2)
	}
	var p Partition
	ms[0].node.Read(func(s *State) { p = s.Topics["t"].Partitions[0].clone() })
	req := AlterPartitionRequest{BrokerID: p.Leader, BrokerEpoch: epochs[p.Leader], Topic: "t", TopicID: id,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: []int32{p.Leader}}
	if c, err := cl.AlterPartition(ctx, req); err != nil || c == nil || len(c.ISR) != 1 {
		t.Fatalf("ISR shrink: %+v %v", c, err)
	}
	if c, err := cl.AlterPartition(ctx, req); !errors.Is(err, kerr.InvalidUpdateVersion) {
		t.Fatalf("stale ISR change: %+v %v, want INVALID_UPDATE_VERSION", c, err)
	}
	res, err := cl.ElectLeaders(ctx, true, nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("unclean election of everything with every leader up: %v %v", res, err)
	}
	if err := cl.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	s, err := cl.FetchMetadata(ctx, 0, 0)
	if err != nil || s.Topics["t"] != nil || s.TopicByID(id) != nil || len(s.Brokers) != 2 {
		t.Fatalf("metadata after delete: %+v %v", s, err)
	}
}

func TestNetFetchMetadataLongPoll(t *testing.T) {
	ms, voters := startNetCluster(t, 1, nil)
	activeMember(t, ms)
	cl := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	defer cl.Close()
	ctx := ctxFor(t, 10*time.Second)
	s0, err := cl.FetchMetadata(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing changes: the poll waits out maxWait and returns the same state.
	start := time.Now()
	s1, err := cl.FetchMetadata(ctx, s0.AppliedIndex, 150*time.Millisecond)
	if err != nil || s1.AppliedIndex != s0.AppliedIndex {
		t.Fatalf("idle poll: %v %v", s1, err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 2*time.Second {
		t.Fatalf("idle poll returned after %v, want about 150ms", el)
	}
	// A change wakes the poll at once.
	type result struct {
		s   *State
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		s, err := cl.FetchMetadata(ctx, s0.AppliedIndex, 5*time.Second)
		got <- result{s, err, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond)
	changed := time.Now()
	if err := cl.SetConfigs(ctx, ConfigResourceBroker, "", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.s.AppliedIndex <= s0.AppliedIndex || r.s.BrokerConfigs[""]["k"] != "v" {
		t.Fatalf("woken poll: %+v %v", r.s, r.err)
	}
	if d := r.at.Sub(changed); d > time.Second {
		t.Fatalf("poll answered %v after the change", d)
	}
}
