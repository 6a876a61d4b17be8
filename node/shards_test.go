package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/sluicemq/sluice/tuning"
)

// kernelCPUs reads a thread's Cpus_allowed_list from /proc: the kernel's
// word on where the thread may run, independent of sluice's bookkeeping.
func kernelCPUs(t testing.TB, tid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		t.Fatalf("thread %d: %v", tid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("thread %d: no Cpus_allowed_list", tid)
	return ""
}

// threadGone waits for a thread to exit (pinned threads must die with
// their goroutine, not return to the runtime's pool).
func threadGone(t testing.TB, tid int, what string) {
	t.Helper()
	if tid == os.Getpid() {
		// The main thread cannot exit: a goroutine that ends locked to it
		// leaves it parked for good (runtime.mexit), which is as safe.
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s thread %d still alive after Close: a pinned thread went back to the runtime", what, tid)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allowedOrSkip(t *testing.T, need ...int) []int {
	t.Helper()
	allowed, err := tuning.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range need {
		if !slices.Contains(allowed, c) {
			t.Skipf("CPU %d is not available to this process (allowed %v)", c, allowed)
		}
	}
	return allowed
}

// TestPinningRealHost: numa.pinning=auto (the default) on this machine's
// real /sys pins each event loop's thread to its shard's CPU (as the kernel
// reports it), produce and consume still work, and the pinned threads exit
// at Close.
func TestPinningRealHost(t *testing.T) {
	allowed := allowedOrSkip(t)
	n := startNode(t, "", nil)
	v := n.Shards()
	if v.Pinning != "auto" || len(v.Shards) != 2 {
		t.Fatalf("pinning %q (%s), %d shards; want auto with 2", v.Pinning, v.Reason, len(v.Shards))
	}
	for _, s := range v.Shards {
		if s.LoopTid == 0 {
			t.Fatalf("shard %d: its loop was not pinned by Start", s.ID)
		}
		if got, want := kernelCPUs(t, s.LoopTid), tuning.FormatCPUList(s.CPUs); got != want {
			t.Errorf("shard %d loop thread %d: kernel says CPUs %s, plan says %s", s.ID, s.LoopTid, got, want)
		}
	}
	if v.Shards[0].LoopTid == v.Shards[1].LoopTid {
		t.Errorf("both loops on thread %d", v.Shards[0].LoopTid)
	}
	roundTrip(t, n, "real", 2)
	// One committer per node the shards use; a lone committer that would
	// get every allowed CPU anyway (this 1-node VM) is left unpinned.
	nodes := map[int]bool{}
	for _, s := range v.Shards {
		nodes[s.Node] = true
	}
	if len(v.Committers) != len(nodes) {
		t.Errorf("%d committers for shards on %d nodes", len(v.Committers), len(nodes))
	}
	if c := v.Committers[0]; len(v.Committers) == 1 && c.Pinned == (tuning.FormatCPUList(c.CPUs) == tuning.FormatCPUList(allowed)) {
		t.Errorf("committer %+v pinned=%v with allowed CPUs %v", c, c.Pinned, allowed)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Shards {
		threadGone(t, s.LoopTid, "loop")
	}
}

// twoNodeHost is a fake 2-node topology over this machine's CPUs 0 and 1,
// so that a real node gets two committers pinned to real CPUs.
func twoNodeHost(t *testing.T) *tuning.Host {
	allowedOrSkip(t, 0, 1)
	return fakeSys(t, "0-1", "0-1", map[int]string{0: "0", 1: "1"})
}

// TestPinningTwoCommitters: with a fake 2-node topology the node runs two
// committers, each pinned to its node's CPU; partitions alternate between
// them (the disk's node is unknown), kgo produce and consume work through
// both, /debug/shards and the gauges say where everything is, and deleting
// the topic empties the shards.
func TestPinningTwoCommitters(t *testing.T) {
	host := twoNodeHost(t)
	n := startNode(t, "", func(c *Config) { c.numa.host = host })
	v := n.Shards()
	if v.Pinning != "auto" || len(v.Committers) != 2 {
		t.Fatalf("pinning %q (%s) with %d committers, want auto with 2", v.Pinning, v.Reason, len(v.Committers))
	}
	for i, c := range v.Committers {
		if !c.Pinned || c.Node != i {
			t.Fatalf("committer %+v: want pinned, serving node %d", c, i)
		}
		if got := kernelCPUs(t, c.Tid); got != fmt.Sprint(i) {
			t.Errorf("committer %d thread %d: kernel says CPUs %s, want %d", i, c.Tid, got, i)
		}
	}
	for i, s := range v.Shards {
		if got := kernelCPUs(t, s.LoopTid); got != fmt.Sprint(i) {
			t.Errorf("loop %d thread %d: kernel says CPUs %s, want %d", i, s.LoopTid, got, i)
		}
	}

	roundTrip(t, n, "two", 4)
	v = n.Shards()
	var got []string
	for _, p := range v.Partitions {
		got = append(got, fmt.Sprintf("%s-%d:%d/%d", p.Topic, p.Partition, p.Shard, p.Committer))
	}
	want := []string{"two-0:0/0", "two-1:1/1", "two-2:0/0", "two-3:1/1"}
	if !slices.Equal(got, want) {
		t.Errorf("partition:shard/committer %v, want %v", got, want)
	}
	for i, c := range v.Committers {
		if c.Bytes == 0 || c.Rounds == 0 {
			t.Errorf("committer %d wrote nothing: %+v", i, c)
		}
	}

	// The same view over HTTP, and the gauges.
	rec := httptest.NewRecorder()
	n.ShardsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/shards", nil))
	var fromHTTP ShardsView
	if err := json.Unmarshal(rec.Body.Bytes(), &fromHTTP); err != nil || rec.Code != 200 {
		t.Fatalf("GET /debug/shards: %d %v\n%s", rec.Code, err, rec.Body)
	}
	if len(fromHTTP.Partitions) != 4 || fromHTTP.Plan == "" || fromHTTP.Shards[1].CPUs[0] != 1 {
		t.Errorf("GET /debug/shards: %s", rec.Body)
	}
	gauge := func(shard int) string {
		var b bytes.Buffer
		n.cfg.Metrics.WritePrometheus(&b)
		m := regexp.MustCompile(fmt.Sprintf(`(?m)^sluice_shard_partitions\{shard="%d"\} (\S+)$`, shard)).FindStringSubmatch(b.String())
		if m == nil {
			t.Fatalf("no sluice_shard_partitions gauge for shard %d", shard)
		}
		return m[1]
	}
	if gauge(0) != "2" || gauge(1) != "2" {
		t.Errorf("sluice_shard_partitions: shard 0 = %s, shard 1 = %s, want 2 and 2", gauge(0), gauge(1))
	}
	if _, err := newAdmin(t, n).DeleteTopics(testCtx(t), "two"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deleted topic's partitions leave their shards", func() bool {
		return gauge(0) == "0" && gauge(1) == "0"
	})

	tids := []int{v.Committers[0].Tid, v.Committers[1].Tid, v.Shards[0].LoopTid, v.Shards[1].LoopTid}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		threadGone(t, tid, "pinned")
	}
}

// TestPinningOffAndFallback: numa.pinning=off, an unreadable topology and a
// host that refuses sched_setaffinity all start a broker that pins nothing,
// runs one committer and works; the view says why.
func TestPinningOffAndFallback(t *testing.T) {
	f := func(name string, mod func(*Config), wantReason string) {
		t.Helper()
		n := startNode(t, "", mod)
		v := n.Shards()
		if v.Pinning != "off" || !strings.Contains(v.Reason, wantReason) || len(v.Shards) != 0 ||
			len(v.Committers) != 1 || v.Committers[0].Pinned {
			t.Errorf("%s: view %+v, want off because %q, one unpinned committer", name, v, wantReason)
		}
		roundTrip(t, n, "off", 2)
		for _, p := range n.Shards().Partitions {
			if p.Shard != -1 || p.Committer != 0 {
				t.Errorf("%s: partition %+v, want shard -1 committer 0", name, p)
			}
		}
	}
	f("numa.pinning=off", func(c *Config) { c.NumaPinning = tuning.PinningOff }, "numa.pinning=off")
	f("no topology", func(c *Config) { c.numa.host = tuning.NewHost(t.TempDir()) }, "cannot read the CPU topology")
	f("EPERM", func(c *Config) {
		c.numa.pin = func([]int) error { return fmt.Errorf("tuning: sched_setaffinity: %w", unix.EPERM) }
	}, "operation not permitted")
}

// TestPinningFailsLater: a pin that fails after start-up (the cpuset
// shrank) turns pinning off and gives every thread pinned so far all the
// allowed CPUs back; the broker keeps working.
func TestPinningFailsLater(t *testing.T) {
	host := twoNodeHost(t)
	allowed, _ := tuning.AllowedCPUs()
	var calls atomic.Int32
	var pinned []int // tids, appended under pinning.mu (pin runs under it)
	pin := func(cpus []int) error {
		// 2 probe pins, then 2 committers and 2 loops in some order: the
		// last of those four fails.
		if calls.Add(1) == 6 {
			return fmt.Errorf("tuning: sched_setaffinity: %w", unix.EINVAL)
		}
		if err := tuning.PinCurrentThread(cpus); err != nil {
			return err
		}
		pinned = append(pinned, unix.Gettid())
		return nil
	}
	n := startNode(t, "", func(c *Config) { c.numa.host, c.numa.pin = host, pin })
	// The committers pin themselves whenever their goroutines start.
	waitUntil(t, "6 pin calls", func() bool { return calls.Load() >= 6 })
	v := n.Shards()
	if v.Pinning != "off" || !strings.Contains(v.Reason, "failed") {
		t.Fatalf("after a failed pin: pinning %q, reason %q", v.Pinning, v.Reason)
	}
	if calls.Load() != 6 || len(pinned) != 5 {
		t.Fatalf("%d pin calls, %d pinned threads; want 6 and 5", calls.Load(), len(pinned))
	}
	for _, tid := range pinned[2:] { // the probe's thread is gone
		if got := kernelCPUs(t, tid); got != tuning.FormatCPUList(allowed) {
			t.Errorf("thread %d still restricted to %s after the failure, want %s", tid, got, tuning.FormatCPUList(allowed))
		}
	}
	for _, c := range v.Committers {
		if c.Pinned {
			t.Errorf("committer %d still reported pinned", c.ID)
		}
	}
	roundTrip(t, n, "later", 2)
}

// roundTrip creates topic with parts partitions, produces 20 records to
// each with kgo (acks=all) and consumes them all back.
func roundTrip(t *testing.T, n *Node, topic string, parts int32) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := newAdmin(t, n).CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range parts {
		for i := range 20 {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i))})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cons := newClient(t, n, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < len(recs) {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(seen), len(recs), err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("%d-", r.Partition); !strings.HasPrefix(string(r.Value), want) {
				t.Fatalf("record %q in partition %d", r.Value, r.Partition)
			}
			seen[string(r.Value)] = true
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
