package node

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Dedicated controllers (process.roles=controller) and broker-only nodes
// (process.roles=broker): the brokers register with and follow a quorum they
// are not part of, replicate between themselves, and survive the loss of a
// controller voter.
func TestClusterDedicatedControllers(t *testing.T) {
	ports := reservePorts(t, 5)
	voters := map[int32]string{}
	for i := range 3 {
		voters[int32(i+1)] = "127.0.0.1:" + strconv.Itoa(ports[i])
	}
	tc := &testCluster{t: t}
	for i := range 5 {
		cfg := DefaultConfig()
		cfg.NodeID = int32(i + 1)
		cfg.DataDir = t.TempDir()
		cfg.Logger = testLogger().With("node", i+1)
		cfg.Net.Loops = 1
		cfg.NumaPinning = "off"
		cfg.Cluster = DefaultClusterConfig(voters)
		cfg.Cluster.ShutdownTimeout = 2 * time.Second
		if i < 3 {
			cfg.Cluster.Broker = false // controller only: no Kafka listener
		} else {
			cfg.Cluster.Controller = false
			cfg.Listen = "127.0.0.1:" + strconv.Itoa(ports[i])
		}
		tc.cfgs = append(tc.cfgs, cfg)
		tc.dirs = append(tc.dirs, cfg.DataDir)
	}
	tc.nodes = make([]*Node, 5)
	for i := range tc.cfgs {
		tc.restart(i)
	}
	t.Cleanup(func() {
		for i := range tc.nodes {
			tc.stop(i)
		}
	})
	seeds := []struct {
		id   int
		addr string
	}{{4, tc.cfgs[3].Listen}, {5, tc.cfgs[4].Listen}}
	client := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds[0].addr, seeds[1].addr), kgo.RetryTimeout(30 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	ctx := testCtx(t)
	cl := client()
	adm := kadm.NewClient(cl)
	// A direct Metadata request on each broker (kadm's BrokerMetadata may
	// answer from kgo's cache).
	deadline := time.Now().Add(20 * time.Second)
	for _, seed := range seeds {
		for {
			req := kmsg.NewPtrMetadataRequest()
			resp, err := req.RequestWith(ctx, cl.Broker(seed.id))
			var ids []int32
			if err == nil {
				for _, b := range resp.Brokers {
					ids = append(ids, b.NodeID)
				}
			}
			if slices.Equal(ids, []int32{4, 5}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker %d lists brokers %v (err %v), want [4 5]: controller-only nodes are no brokers", seed.id, ids, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	res, err := adm.CreateTopic(ctx, 2, 2, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "dedicated")
	if err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	produce := func(from, to int) {
		t.Helper()
		cl := client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("dedicated"))
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("v%d", i))}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	produce(0, 100)

	// Stop the active controller: the other two elect one and the brokers,
	// which only reach the quorum over the network, carry on.
	active := -1
	for i := range 3 {
		if _, _, on := tc.nodes[i].cluster.raft.Status(); on {
			active = i
		}
	}
	if active < 0 {
		t.Fatal("no active controller among the voters")
	}
	tc.stop(active)
	produce(100, 200)
	res, err = adm.CreateTopic(ctx, 1, 2, nil, "after-controller-loss")
	if err != nil || res.Err != nil {
		t.Fatalf("create after losing controller %d: %v %v", active+1, err, res.Err)
	}

	cons := client(kgo.ConsumeTopics("dedicated"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < 200 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	// Both brokers hold both partitions, replicated to the same end.
	for pi := int32(0); pi < 2; pi++ {
		deadline := time.Now().Add(10 * time.Second)
		for {
			a, b := tc.nodes[3].reg.partition("dedicated", pi), tc.nodes[4].reg.partition("dedicated", pi)
			if a != nil && b != nil && a.getLog() != nil && b.getLog() != nil &&
				a.getLog().Offsets().End == b.getLog().Offsets().End && a.hw.Load() == b.hw.Load() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d: replicas on the two brokers did not converge", pi)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
