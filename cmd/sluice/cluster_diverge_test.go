package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterDivergedFollowerRejoins: a follower holding an uncommitted
// suffix from an epoch the new leader never had must truncate it and rejoin.
//
// Setup, on a fresh 1-partition topic (RF 3, min.insync.replicas 2) with
// replicas [L, B, A] (L leads, A is the active controller): B is SIGSTOPped; one record is written with
// acks=1, so L and A hold it in epoch 0 and B, stopped, does not; L is
// killed (-9) and B resumed before its session expires, so B (next in
// assignment order, still in the ISR) leads epoch 1 with an empty log. A
// then fetches with LastFetchedEpoch 0 from a leader whose epoch history
// starts at epoch 1: Kafka's leader answers DivergingEpoch (0, 0) (its epoch
// cache's rule for an epoch below the first one it knows) and A truncates
// to 0. An acks=all write must then succeed, and the three replicas
// converge once L is back.
func TestClusterDivergedFollowerRejoins(t *testing.T) {
	c := startProcCluster(t, 3, clusterArgs...)
	adm := kadm.NewClient(c.client())
	// The active controller must be A: killing L then needs no raft
	// election, and stopping B does not stop the controller (which would
	// fence the brokers whose heartbeats hang on it). Placement starts at a
	// random broker, so a few topics give one that fits.
	var topic string
	var replicas []int32
	for try := 1; ; try++ {
		topic = fmt.Sprintf("diverge-%d", try)
		leaders := c.createTopicRF(adm, topic, 1, 2)
		v, err := c.metaFrom(int(leaders[0])-1, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		replicas = v.topics[topic][0].replicas
		if replicas[0] != leaders[0] {
			t.Fatalf("%s: leader %d is not the first replica of %v", topic, leaders[0], replicas)
		}
		if int(replicas[2])-1 == c.activeController() {
			break
		}
		if try == 12 {
			t.Fatalf("no topic placed with the active controller last in 12 tries (last: %v)", replicas)
		}
	}
	l, b, a := int(replicas[0])-1, int(replicas[1])-1, int(replicas[2])-1
	c.pause(b)
	pausedAt := time.Now()
	// Seeded with L only, and quick to give up on a request to the stopped
	// B, so the write is done well within B's session timeout.
	one, err := kgo.NewClient(kgo.SeedBrokers(c.addr(l)), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.RequestTimeoutOverhead(500*time.Millisecond), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	ctx := testCtx(t, 30*time.Second)
	if err := one.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("epoch 0, uncommitted")}).FirstErr(); err != nil {
		t.Fatalf("acks=1 write: %v", err)
	}
	// A fetches it (B, stopped, cannot): wait until A's log holds bytes.
	for deadline := time.Now().Add(1500 * time.Millisecond); c.logSize(a, topic, 0) <= 0; {
		if time.Now().After(deadline) {
			t.Fatalf("follower node %d did not replicate an acks=1 record within 1.5s", a+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if paused := time.Since(pausedAt); paused > 2*time.Second {
		t.Fatalf("setup too slow: node %d stopped for %v, near its 3 s session timeout", b+1, paused)
	}
	c.kill9(l)
	time.Sleep(300 * time.Millisecond)
	c.resume(b)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m, err := c.metaFrom(b, 2*time.Second); err == nil && len(m.topics[topic]) == 1 && int(m.topics[topic][0].leader)-1 == b {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d (next in assignment order %v) did not become leader after node %d's kill", b+1, replicas, l+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("replicas %v: node %d killed, node %d leads with an empty log, node %d holds an epoch-0 record", replicas, l+1, b+1, a+1)
	all := c.client(kgo.RequiredAcks(kgo.AllISRAcks()))
	wctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := all.ProduceSync(wctx, &kgo.Record{Topic: topic, Value: []byte("epoch 1")}).FirstErr(); err != nil {
		m, _ := c.metaFrom(b, 2*time.Second)
		var isr []int32
		if m != nil && len(m.topics[topic]) == 1 {
			isr = m.topics[topic][0].isr
		}
		t.Fatalf("acks=all write to the new leader not acknowledged within 15s (%v); ISR %v: follower node %d did not "+
			"truncate its epoch-0 suffix and catch up", err, isr, a+1)
	}
	t.Logf("acks=all write acknowledged %v after the new leader was seen", time.Since(start).Round(time.Millisecond))
	c.start(l)
	c.waitHealthy(60*time.Second, 1, topic)
	c.compareReplicas(topic, 1)
}

// logSize is topic[p]'s segment bytes on node i (DescribeLogDirs), -1 if
// node i does not say.
func (c *procCluster) logSize(i int, topic string, p int32) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kr, err := c.direct[i].SeedBrokers()[0].Request(ctx, kmsg.NewPtrDescribeLogDirsRequest())
	if err != nil {
		return -1
	}
	for _, d := range kr.(*kmsg.DescribeLogDirsResponse).Dirs {
		for _, t := range d.Topics {
			for _, tp := range t.Partitions {
				if t.Topic == topic && tp.Partition == p {
					return tp.Size
				}
			}
		}
	}
	return -1
}
