package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkOffsetCommit measures committed offsets per second through the
// coordinator over the network, each acknowledged only once durable
// (log.flush.policy=ack: fsynced, group commit sharing the fsyncs).
// Committers work in parallel, one group each, one partition offset per
// OffsetCommit request (the figure is requests = offsets per second), from
// 16 clients as many consumers' commits would arrive. commits/round and
// fsyncs/round show the group commit at work.
//
//	go test -run '^$' -bench OffsetCommit -benchtime 200000x ./node/
func BenchmarkOffsetCommit(b *testing.B) {
	for _, committers := range []int{1, 64, 256, 1024} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			n := startNode(b, "", nil)
			adm := newAdmin(b, n)
			if _, err := adm.CreateTopic(context.Background(), 1, 1, nil, "t"); err != nil {
				b.Fatal(err)
			}
			clients := make([]*kgo.Client, 16)
			for i := range clients {
				clients[i] = newClient(b, n)
			}
			// Warm up: create the offsets topic and every group.
			for g := 0; g < committers; g++ {
				if err := commitOnce(clients[g%len(clients)], g, 0); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Value
			before := n.store.Stats()
			b.ResetTimer()
			start := time.Now()
			for g := 0; g < committers; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					cl := clients[g%len(clients)]
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := commitOnce(cl, g, i); err != nil {
							failed.Store(err)
							return
						}
					}
				}(g)
			}
			wg.Wait()
			elapsed := time.Since(start)
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
			after := n.store.Stats()
			rounds := float64(after.Rounds - before.Rounds)
			b.ReportMetric(float64(b.N)/rounds, "commits/round")
			b.ReportMetric(float64(after.Syncs-before.Syncs)/rounds, "fsyncs/round")
		})
	}
}

func commitOnce(cl *kgo.Client, g int, offset int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = fmt.Sprintf("bench-%d", g)
	req.Generation, req.MemberID = -1, ""
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

// TestRebalance100 measures a rebalance of 100 kgo members: the time from
// the last member's first JoinGroup to every member holding its assignment.
// The initial rebalance delay is set to 0 here so the figure is the
// coordinator's work, not the configured wait.
// Members use the eager range balancer, so the figure is one rebalance.
func TestRebalance100(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	n := startNode(t, "", func(c *Config) {
		fastGroups(c)
		c.Groups.InitialRebalanceDelay = 0
	})
	adm := newAdmin(t, n)
	if _, err := adm.CreateTopic(testCtx(t), 100, 1, nil, "r"); err != nil {
		t.Fatal(err)
	}
	const members = 100
	owned := make([]atomic.Int32, members) // partitions each member holds now
	var lastStart time.Time
	for i := 0; i < members; i++ {
		cl := newClient(t, n, kgo.ConsumerGroup("r100"), kgo.ConsumeTopics("r"),
			kgo.Balancers(kgo.RangeBalancer()),
			kgo.SessionTimeout(10*time.Second), kgo.RebalanceTimeout(10*time.Second),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				owned[i].Add(int32(len(m["r"])))
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				owned[i].Add(-int32(len(m["r"])))
			}))
		lastStart = time.Now()
		go cl.PollFetches(testCtx(t))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		all := 0
		for i := range owned {
			if owned[i].Load() == 1 {
				all++
			}
		}
		if all == members {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d members hold exactly one partition", all, members)
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(lastStart)
	t.Logf("rebalance of %d members: %v from the last member's start to every member holding its partition", members, took)
	if took > 10*time.Second {
		t.Errorf("rebalance took %v", took)
	}
}
