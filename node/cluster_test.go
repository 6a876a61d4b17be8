package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicemq/sluice/ctrl"
)

// testCluster is n in-process nodes, each broker + controller, on loopback.
type testCluster struct {
	t     testing.TB
	nodes []*Node
	dirs  []string
	cfgs  []Config
}

// reservePorts finds n bindable loopback ports below Linux's ephemeral
// range (32768+). They are released before the nodes bind them; taken from
// the ephemeral range, a client socket could grab one in between.
func reservePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for p := 20000 + rand.IntN(12000-4*n); len(out) < n && p < 32768; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	if len(out) < n {
		t.Fatalf("found only %d free ports below 32768", len(out))
	}
	return out
}

func startCluster(t testing.TB, size int, mod func(*Config)) *testCluster {
	t.Helper()
	ports := reservePorts(t, 2*size)
	voters := map[int32]string{}
	for i := 0; i < size; i++ {
		voters[int32(i+1)] = "127.0.0.1:" + strconv.Itoa(ports[size+i])
	}
	tc := &testCluster{t: t}
	for i := 0; i < size; i++ {
		cfg := DefaultConfig()
		cfg.NodeID = int32(i + 1)
		cfg.Listen = "127.0.0.1:" + strconv.Itoa(ports[i])
		cfg.DataDir = t.TempDir()
		cfg.Logger = testLogger().With("node", i+1)
		cfg.Net.Loops = 1
		cfg.NumaPinning = "off"
		cfg.Cluster = DefaultClusterConfig(voters)
		cfg.Cluster.ShutdownTimeout = 2 * time.Second
		if mod != nil {
			mod(&cfg)
		}
		tc.cfgs = append(tc.cfgs, cfg)
		tc.dirs = append(tc.dirs, cfg.DataDir)
	}
	tc.nodes = make([]*Node, size)
	for i := range tc.cfgs {
		tc.restart(i)
	}
	t.Cleanup(func() {
		for i := range tc.nodes {
			tc.stop(i)
		}
	})
	return tc
}

func (tc *testCluster) restart(i int) {
	tc.t.Helper()
	n, err := New(tc.cfgs[i])
	if err != nil {
		tc.t.Fatalf("node %d: New: %v", i+1, err)
	}
	if err := n.Start(); err != nil {
		tc.t.Fatalf("node %d: Start: %v", i+1, err)
	}
	tc.nodes[i] = n
}

func (tc *testCluster) stop(i int) {
	if n := tc.nodes[i]; n != nil && !n.closing.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		n.Close(ctx)
	}
}

func (tc *testCluster) seeds() []string {
	var out []string
	for _, c := range tc.cfgs {
		out = append(out, c.Listen)
	}
	return out
}

func (tc *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	tc.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tc.seeds()...), kgo.RetryTimeout(30 * time.Second)}, opts...)...)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(cl.Close)
	return cl
}

// waitBrokers waits until every node lists want live brokers.
func (tc *testCluster) waitBrokers(want int) {
	tc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range tc.nodes {
			if n == nil || n.closing.Load() || len(n.brokers()) != want {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, n := range tc.nodes {
		if n != nil {
			tc.t.Logf("node %d sees %d brokers", i+1, len(n.brokers()))
		}
	}
	tc.t.Fatalf("cluster did not reach %d live brokers", want)
}

func TestClusterProduceConsumeRF3(t *testing.T) {
	tc := startCluster(t, 3, nil)
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	res, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "rf3")
	if err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	cl := tc.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("rf3"))
	const total = 3000
	for i := 0; i < total; i++ {
		cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(fmt.Sprintf("v%d", i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cons := tc.client(kgo.ConsumeTopics("rf3"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < total {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	// Every replica has every record: each partition's HW equals its LEO on all nodes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		same := true
		for pi := int32(0); pi < 3; pi++ {
			var ends []int64
			for _, n := range tc.nodes {
				p := n.reg.partition("rf3", pi)
				if p == nil || p.getLog() == nil {
					t.Fatalf("node %d has no replica of rf3-%d", n.cfg.NodeID, pi)
				}
				ends = append(ends, p.getLog().Offsets().End, p.hw.Load())
			}
			for _, e := range ends {
				if e != ends[0] {
					same = false
				}
			}
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replicas did not converge")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterAdminAndGroups: topic admin forwarded to the controller from
// any broker, a consumer group coordinated across the cluster, and a
// restarted broker catching up, all through franz-go.
func TestClusterAdminAndGroups(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.Groups.InitialRebalanceDelay = 0 })
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	if _, err := adm.CreateTopic(ctx, 2, 3, nil, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.UpdatePartitions(ctx, 4, "a"); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Topics["a"].Partitions); n != 4 {
		t.Fatalf("partitions %d, want 4", n)
	}
	leaders := map[int32]int{}
	for _, p := range md.Topics["a"].Partitions {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 {
			t.Fatalf("partition %d: replicas %v isr %v", p.Partition, p.Replicas, p.ISR)
		}
		leaders[p.Leader]++
	}
	if len(leaders) < 2 {
		t.Fatalf("leaders not spread: %v", leaders)
	}
	// Idempotent producer (ids from the controller) and a group consumer.
	prod := tc.client(kgo.DefaultProduceTopic("a"))
	for i := 0; i < 400; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := tc.client(kgo.ConsumeTopics("a"), kgo.ConsumerGroup("g"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit())
	got := 0
	for got < 400 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != 400 {
		t.Fatalf("committed offsets sum %d, want 400", sum)
	}
	// Deleting the topic from another broker removes every replica.
	adm2 := kadm.NewClient(tc.client(kgo.SeedBrokers(tc.cfgs[2].Listen)))
	if _, err := adm2.DeleteTopic(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range tc.nodes {
		for n.reg.get("a") != nil || len(n.store.Logs()) > 50 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d still has topic a", n.cfg.NodeID)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, l := range n.store.Logs() {
			if l.Topic() == "a" {
				t.Fatalf("node %d still has log a-%d", n.cfg.NodeID, l.Partition())
			}
		}
	}
}

// TestClusterRestartCatchesUp: the leader stopped while writes continue
// (controlled shutdown moves its leadership) rejoins the ISR after
// restarting, its replica matches the new leader's byte for byte, and a
// preferred-replica election gives it its leadership back.
func TestClusterRestartCatchesUp(t *testing.T) {
	tc := startCluster(t, 3, nil)
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "r"); err != nil {
		t.Fatal(err)
	}
	prod := tc.client(kgo.DefaultProduceTopic("r"))
	produce := func(k int) {
		for i := 0; i < k; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The committed state as a live node applied it (kadm's Metadata may
	// answer from kgo's metadata cache, which can be seconds old).
	partition := func() ctrl.Partition {
		for _, n := range tc.nodes {
			if n != nil && !n.closing.Load() {
				v, _ := n.cluster.currentView()
				if t := v.Topics["r"]; t != nil {
					return t.Partitions[0]
				}
			}
		}
		t.Fatal("no live node knows topic r")
		return ctrl.Partition{}
	}
	waitFor := func(what string, ok func(ctrl.Partition) bool) ctrl.Partition {
		deadline := time.Now().Add(30 * time.Second)
		for {
			p := partition()
			if ok(p) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	produce(100)
	first := partition()
	victim := first.Leader
	if victim != first.Replicas[0] {
		t.Fatalf("leader %d is not the preferred replica %v", victim, first.Replicas)
	}
	tc.stop(int(victim - 1))
	produce(200) // leadership moved and the ISR shrank; writes go on with 2
	tc.restart(int(victim - 1))
	now := waitFor("restarted broker did not rejoin the ISR", func(p ctrl.Partition) bool { return len(p.ISR) == 3 })
	produce(10)
	ln := tc.nodes[now.Leader-1].reg.partition("r", 0).getLog()
	vn := tc.nodes[victim-1].reg.partition("r", 0).getLog()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && vn.Offsets().End != ln.Offsets().End {
		time.Sleep(20 * time.Millisecond)
	}
	a, err := ln.ReadCopy(0, 1<<30, ln.Offsets().End, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := vn.ReadCopy(0, 1<<30, vn.Offsets().End, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ln.Offsets().End != 310 || string(a) != string(b) {
		t.Fatalf("replica differs: leader end %d (%d bytes), restarted end %d (%d bytes)", ln.Offsets().End, len(a), vn.Offsets().End, len(b))
	}
	res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"r": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res["r"][0]; r.Err != nil {
		for _, n := range tc.nodes {
			v, _ := n.cluster.currentView()
			t.Logf("node %d view @%d: victim %+v partition %+v", n.cfg.NodeID, v.AppliedIndex, v.Brokers[victim], v.Topics["r"].Partitions[0])
		}
		t.Fatalf("preferred election: %v (%s)", r.Err, r.ErrMessage)
	}
	waitFor("leadership did not return to the preferred replica", func(p ctrl.Partition) bool { return p.Leader == victim })
	produce(10)
}
