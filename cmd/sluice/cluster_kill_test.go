package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusterArgs are the serve settings of the cluster process tests: a hung
// broker is fenced after 3 s instead of 9.
var clusterArgs = []string{"--override", "broker.session.timeout.ms=3000"}

// clusterProducer is the acks=all, idempotent producer the cluster tests
// load the cluster with. Retries back off a fixed 100 ms and metadata may be
// refreshed every 250 ms, so a moved leadership is found quickly.
func clusterProducer(c *procCluster, extra ...kgo.Opt) *kgo.Client {
	return c.client(append([]kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(1000),
		kgo.ProducerLinger(2 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(250 * time.Millisecond)}, extra...)...)
}

// clusterSeed is SLUICE_CLUSTER_SEED, else a fresh seed (logged, so a
// failing fault sequence can be replayed).
func clusterSeed(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("SLUICE_CLUSTER_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("fault seed %d (SLUICE_CLUSTER_SEED replays it)", seed)
	return rand.New(rand.NewPCG(seed, seed>>32|1))
}

// TestClusterKill9: a 3-process cluster under a continuous acks=all
// idempotent load survives, each cycle, kill -9 of a partition leader,
// kill -9 of the active controller and a SIGSTOP of a node for 5 s (longer
// than the session timeout; cycles 1, 4, ... stop the active controller,
// 2, 5, ... a partition leader, the others any node), each followed by a restart (or SIGCONT) and a
// wait until every replica is back in every ISR. Then every acknowledged
// record must be at its acknowledged offset, no record twice, and the three
// replicas of each partition byte-identical up to the high watermark.
// SLUICE_CLUSTER_KILL_CYCLES sets the cycles (default 1),
// SLUICE_CLUSTER_KILL_RATE the records per second (default 20000; 0: as fast
// as acknowledged), SLUICE_CLUSTER_SEED the fault sequence.
func TestClusterKill9(t *testing.T) {
	cycles := 1
	if v, err := strconv.Atoi(os.Getenv("SLUICE_CLUSTER_KILL_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	rng := clusterSeed(t)
	const topic, parts = "kill9", 6
	c := startProcCluster(t, 3, clusterArgs...)
	leaders := c.createTopicRF(kadm.NewClient(c.client()), topic, parts, 2)
	rate := 20000
	if v, err := strconv.Atoi(os.Getenv("SLUICE_CLUSTER_KILL_RATE")); err == nil && v >= 0 {
		rate = v
	}
	lp := startLoad(t, clusterProducer(c), topic, rate)
	lp.waitAcked(2000, 60*time.Second)
	lp.takeStall()
	moves, faults := 0, 0
	// after waits until the cluster is whole again and writable, and counts
	// the leaderships the fault moved.
	after := func(what string, start time.Time) {
		t.Helper()
		now := c.waitHealthy(120*time.Second, parts, topic)
		for p := range now {
			if now[p] != leaders[p] {
				moves++
			}
		}
		leaders = now
		lp.waitAcked(500, 60*time.Second)
		faults++
		stall, end := lp.takeStall()
		t.Logf("%s: whole again and writable after %v; longest write stall %v, from +%v (leaders %v, %d acks so far)", what,
			time.Since(start).Round(time.Millisecond), stall.Round(time.Millisecond),
			end.Add(-stall).Sub(start).Round(time.Millisecond), leaders, lp.ackedCount())
	}
	down := func() time.Duration { return time.Second + time.Duration(rng.IntN(1000))*time.Millisecond }
	for cycle := 1; cycle <= cycles; cycle++ {
		p := int32(rng.IntN(parts))
		v := c.leaderOf(topic, p)
		start := c.kill9(v)
		time.Sleep(down())
		c.start(v)
		after(fmt.Sprintf("cycle %d: kill -9 node %d (leader of %s[%d])", cycle, v+1, topic, p), start)

		a := c.activeController()
		start = c.kill9(a)
		time.Sleep(down())
		c.start(a)
		after(fmt.Sprintf("cycle %d: kill -9 node %d (active controller)", cycle, a+1), start)

		// Cycles 1, 4, ... stop the active controller (a raft election,
		// and brokers whose heartbeats hang on it must find the new one);
		// 2, 5, ... a partition leader (its leaderships move, its
		// unfinished appends must be truncated); 3, 6, ... any node (maybe
		// a follower only: the ISRs shrink when it is fenced).
		var s int
		switch cycle % 3 {
		case 1:
			s = c.activeController()
		case 2:
			s = c.leaderOf(topic, int32(rng.IntN(parts)))
		default:
			s = rng.IntN(c.size())
		}
		start = time.Now()
		c.pause(s)
		time.Sleep(5 * time.Second)
		c.resume(s)
		after(fmt.Sprintf("cycle %d: SIGSTOP node %d (%s) for 5s", cycle, s+1, []string{"any node", "active controller", "a leader"}[cycle%3]), start)
	}
	lp.finish(120 * time.Second)
	t.Logf("producer: %s", lp.summary())
	c.waitHealthy(120*time.Second, parts, topic)
	n := c.verifyAcks(topic, parts, lp)
	size := c.compareReplicas(topic, parts)
	t.Logf("%d cycles, %d faults, %d leadership moves seen; %d records in the log, all %d acknowledged ones at their offsets; "+
		"3 replicas of %d partitions identical (%d bytes each)", cycles, faults, moves, n, lp.ackedCount(), parts, size)
}

// TestClusterControlledShutdown: SIGTERM to a broker that leads partitions
// moves its leaderships away before it exits (status 0, no "controlled
// shutdown failed"); a running acks=all producer sees no error; after a
// restart the broker rejoins every ISR and the data is intact.
func TestClusterControlledShutdown(t *testing.T) {
	const topic, parts = "ctlshut", 6
	c := startProcCluster(t, 3, clusterArgs...)
	c.createTopicRF(kadm.NewClient(c.client()), topic, parts, 2)
	lp := startLoad(t, clusterProducer(c, kgo.RecordDeliveryTimeout(60*time.Second)), topic, 20000)
	lp.waitAcked(1000, 60*time.Second)
	v := c.leaderOf(topic, 0)
	start := time.Now()
	if code := c.terminate(v); code != 0 {
		t.Fatalf("node %d exited with status %d after SIGTERM", v+1, code)
	}
	took := time.Since(start)
	if line := c.nodes[v].findLog("controlled shutdown failed"); line != nil {
		t.Errorf("node %d: %v", v+1, line)
	}
	// The others no longer list it, and lead every partition between them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		why := ""
		for i := range c.nodes {
			if i == v {
				continue
			}
			m, err := c.metaFrom(i, 2*time.Second)
			if err != nil {
				why = err.Error()
				break
			}
			if len(m.brokers) != c.size()-1 {
				why = fmt.Sprintf("node %d lists brokers %v", i+1, m.brokers)
			}
			for p, pv := range m.topics[topic] {
				if pv.leader < 0 || int(pv.leader) == v+1 {
					why = fmt.Sprintf("node %d: %s[%d] leader %d", i+1, topic, p, pv.leader)
				}
			}
		}
		if why == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaderships of stopped node %d did not move: %s", v+1, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
	lp.waitAcked(500, 60*time.Second)
	c.start(v)
	c.waitHealthy(120*time.Second, parts, topic)
	lp.waitAcked(500, 60*time.Second)
	lp.finish(60 * time.Second)
	t.Logf("node %d stopped in %v; producer: %s", v+1, took.Round(time.Millisecond), lp.summary())
	if errs := lp.errors(); len(errs) > 0 {
		t.Errorf("the producer saw errors during the controlled shutdown: %v", errs)
	}
	c.verifyAcks(topic, parts, lp)
	c.compareReplicas(topic, parts)
}
