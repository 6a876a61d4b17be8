package node

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testCluster is n in-process nodes, each broker + controller, on loopback.
type testCluster struct {
	t     testing.TB
	nodes []*Node
	dirs  []string
	cfgs  []Config
}

// reservePorts finds n free loopback ports (released before use, so a
// race with another process is possible but rare).
func reservePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
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
