package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// failoverOpts are the client settings that decide how fast a producer
// finds a new leader: retries back off a fixed 50 ms, metadata may be
// refreshed every 100 ms (kgo's default minimum age is 5 s), no linger.
func failoverOpts() []kgo.Opt {
	return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(100 * time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner())}
}

const failoverOptsText = "kgo: acks=all, idempotent, ProducerLinger(0), RetryBackoffFn(50ms fixed), MetadataMinAge(100ms), " +
	"ProduceSync one record at a time"

// TestClusterFailoverTime measures, SLUICE_CLUSTER_FAILOVER_RUNS times per
// series, how long acks=all writes to a partition stop when its leader is
// killed (-9): from the SIGKILL to the acknowledgement of the first record
// sent after it. Series "broker": the leader is not the active controller
// (the controller fences it when its connection closes). Series
// "controller+leader": the leader is also the active controller (a raft
// election first, then the new controller fences it). The killed node is
// restarted and back in every ISR between runs. Each run uses a fresh
// topic of 3 partitions (RF 3, min.insync.replicas 2), whose placement gives
// every node one leadership, and writes to the partition the victim leads.
// SLUICE_CLUSTER_FAILOVER_OUT names a file for the markdown table.
func TestClusterFailoverTime(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("SLUICE_CLUSTER_FAILOVER_RUNS"))
	if runs <= 0 {
		t.Skip("set SLUICE_CLUSTER_FAILOVER_RUNS (e.g. 10) to measure failover times")
	}
	c := startProcCluster(t, 3, clusterArgs...)
	adm := kadm.NewClient(c.client())
	series := []struct {
		name     string
		withCtrl bool
	}{{"broker (leader only)", false}, {"controller+leader", true}}
	var table strings.Builder
	fmt.Fprintf(&table, "| kill -9 of | runs | median | p90 | max | every run (ms) |\n|---|---|---|---|---|---|\n")
	for si, s := range series {
		var ds []time.Duration
		for run := 1; run <= runs; run++ {
			d, victim := c.failoverRun(adm, fmt.Sprintf("failover-%d-%d", si, run), s.withCtrl)
			t.Logf("%s run %d: node %d killed, writes resumed after %v", s.name, run, victim+1, d.Round(100*time.Microsecond))
			ds = append(ds, d)
		}
		sorted := slices.Clone(ds)
		slices.Sort(sorted)
		var each []string
		for _, d := range ds {
			each = append(each, strconv.FormatInt(d.Milliseconds(), 10))
		}
		fmt.Fprintf(&table, "| %s | %d | %d ms | %d ms | %d ms | %s |\n", s.name, len(ds), quantile(sorted, 0.5).Milliseconds(),
			quantile(sorted, 0.9).Milliseconds(), sorted[len(sorted)-1].Milliseconds(), strings.Join(each, " "))
	}
	table.WriteString("\n" + failoverOptsText + "; sluice: " + strings.Join(clusterArgs[1:], " ") +
		", controller.tick.ms=50, broker.heartbeat.interval.ms=250 (defaults); 3 processes on 127.0.0.1.\n")
	t.Logf("failover times:\n%s", table.String())
	if out := os.Getenv("SLUICE_CLUSTER_FAILOVER_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table.String()), 0o644); err != nil {
			t.Errorf("writing %s: %v", out, err)
		}
	}
}

// quantile is the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	k := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// failoverRun creates topic, picks the partition whose leader is (withCtrl)
// or is not (!withCtrl) the active controller, writes to it one record at a
// time, kills the leader and returns the time from the kill to the first
// acknowledgement of a record sent after it, and the node killed. The node
// is restarted and the cluster healthy again when it returns.
func (c *procCluster) failoverRun(adm *kadm.Client, topic string, withCtrl bool) (time.Duration, int) {
	t := c.t
	t.Helper()
	leaders := c.createTopicRF(adm, topic, 3, 2)
	active := c.activeController()
	p := slices.IndexFunc(leaders, func(l int32) bool { return (int(l)-1 == active) == withCtrl })
	if p < 0 {
		t.Fatalf("%s: leaders %v, active controller node %d: no partition fits", topic, leaders, active+1)
	}
	victim := int(leaders[p]) - 1
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...)}, failoverOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	type ack struct {
		issued, done time.Time
		err          error
	}
	var (
		mu   sync.Mutex
		acks []ack
	)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ctx.Err() == nil; i++ {
			issued := time.Now()
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(strconv.Itoa(i))}).FirstErr()
			mu.Lock()
			acks = append(acks, ack{issued, time.Now(), err})
			mu.Unlock()
		}
	}()
	defer func() { cancel(); <-stopped }()
	// firstAfter is the first successful write sent at or after at.
	firstAfter := func(at time.Time, timeout time.Duration) ack {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			mu.Lock()
			for _, a := range acks {
				if a.err == nil && !a.issued.Before(at) {
					mu.Unlock()
					return a
				}
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		var errs []string
		for _, a := range acks {
			if a.err != nil && len(errs) < 5 {
				errs = append(errs, a.err.Error())
			}
		}
		t.Fatalf("%s[%d]: no write acknowledged within %v of %s (errors: %v)", topic, p, timeout, at.Format("15:04:05.000"), errs)
		return ack{}
	}
	firstAfter(time.Now().Add(200*time.Millisecond), 30*time.Second) // warmed up: a connection and a few writes
	killed := c.kill9(victim)
	a := firstAfter(killed, 60*time.Second)
	cancel()
	<-stopped
	c.start(victim)
	c.waitHealthy(120*time.Second, 3, topic)
	return a.done.Sub(killed), victim
}
