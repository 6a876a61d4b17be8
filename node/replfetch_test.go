package node

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/repl"
	"github.com/sluicemq/sluice/segstore"
)

// sameLogs fails unless the follower's log holds the leader's bytes and
// epoch history.
func sameLogs(t *testing.T, leader, follower *segstore.Log) {
	t.Helper()
	if lb, fb := logBytes(t, leader), logBytes(t, follower); !bytes.Equal(lb, fb) {
		t.Fatalf("follower log (%d bytes) differs from the leader's (%d bytes)", len(fb), len(lb))
	}
	if le, fe := leader.Epochs(), follower.Epochs(); !reflect.DeepEqual(le, fe) {
		t.Fatalf("epochs: leader %v follower %v", le, fe)
	}
}

func TestReplicaFetcherReplicates(t *testing.T) {
	fl := newFakeLeader(t)
	ll := testLog(t, testStore(t), "t", 0)
	appendN(t, ll, 0, 3)
	appendN(t, ll, 2, 4)
	appendN(t, ll, 5, 2)
	fl.addLog("t", 0, ll)
	fl.setHW("t", 0, 4)

	tf := newTestFollower(t, nil)
	p := tf.partition("t", 0)
	f := tf.follow(p, fl, 5)
	waitUntil(t, "follower at LEO 9, HW 4", func() bool { return p.getLog().Offsets().End == 9 && p.hw.Load() == 4 })
	sameLogs(t, ll, p.getLog())

	// Another Follower's unfollow does not stop this one.
	tf.r.unfollow(p, repl.NewFollower(repl.FollowerConfig{BrokerID: 2}, p.getLog(), 1, 5, 0))
	appendN(t, ll, 5, 3)
	fl.setHW("t", 0, 12)
	waitUntil(t, "follower at LEO 12, HW 12", func() bool { return p.getLog().Offsets().End == 12 && p.hw.Load() == 12 })
	sameLogs(t, ll, p.getLog())
	if f.HighWatermark() != 12 {
		t.Fatalf("follower HW %d, want 12", f.HighWatermark())
	}

	seen := fl.fetches()
	for i, s := range seen {
		r := s.req
		if r.ReplicaID != 2 || r.MaxWaitMillis != 50 || r.MinBytes != 1 || r.MaxBytes != 10<<20 ||
			r.IsolationLevel != 0 || r.SessionID != 0 || r.SessionEpoch != -1 {
			t.Fatalf("fetch %d: %+v", i, r)
		}
		rp, ok := s.parts[topicPart{"t", 0}]
		if !ok || len(s.parts) != 1 || rp.CurrentLeaderEpoch != 5 || rp.LogStartOffset != -1 || rp.PartitionMaxBytes != 1<<20 {
			t.Fatalf("fetch %d partitions: %+v", i, s.parts)
		}
	}
	if rp := seen[0].parts[topicPart{"t", 0}]; rp.FetchOffset != 0 || rp.LastFetchedEpoch != -1 {
		t.Fatalf("first fetch at %d, last fetched epoch %d; want 0, -1", rp.FetchOffset, rp.LastFetchedEpoch)
	}
	if got := tf.counter("sluice_replica_fetch_requests_total"); got < uint64(len(seen)) {
		t.Fatalf("requests counter %d, the leader saw %d", got, len(seen))
	}
	if got := tf.counter("sluice_replica_fetch_errors_total"); got != 0 {
		t.Fatalf("errors counter %d", got)
	}
}

func TestReplicaFetcherMaxLag(t *testing.T) {
	fl := newFakeLeader(t)
	ll := testLog(t, testStore(t), "t", 0)
	appendN(t, ll, 0, 5)
	fl.addLog("t", 0, ll)
	held, release := make(chan struct{}), make(chan struct{})
	fl.hook(func(n int, _ *kmsg.FetchRequest) bool {
		if n == 2 {
			close(held)
			<-release
		}
		return false
	})
	// One batch per fetch: after the first answer the follower is 4 behind.
	tf := newTestFollower(t, func(c *fetcherConfig) { c.maxBytes = 1 })
	p := tf.partition("t", 0)
	tf.follow(p, fl, 0)
	<-held
	if got := tf.r.maxLag(); got != 4 {
		t.Fatalf("max lag %d after one of 5 batches, want 4", got)
	}
	var out bytes.Buffer
	tf.set.WritePrometheus(&out)
	if !strings.Contains(out.String(), "sluice_replica_max_lag 4\n") {
		t.Fatalf("metrics lack the lag gauge:\n%s", out.String())
	}
	close(release)
	waitUntil(t, "follower at LEO 5", func() bool { return p.getLog().Offsets().End == 5 && p.hw.Load() == 5 })
	if got := tf.r.maxLag(); got != 0 {
		t.Fatalf("max lag %d when caught up", got)
	}
}

func TestReplicaFetcherTruncatesDivergentSuffix(t *testing.T) {
	fl := newFakeLeader(t)
	ll := testLog(t, testStore(t), "t", 0)
	appendN(t, ll, 1, 4) // [0,4) in epoch 1, on both
	tf := newTestFollower(t, nil)
	p := tf.partition("t", 0)
	common, err := ll.ReadCopy(0, 1<<20, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := appendReplicaWait(p.getLog(), common); err != nil {
		t.Fatal(err)
	}
	appendN(t, p.getLog(), 2, 3) // [4,7) the follower led in epoch 2, never committed
	appendN(t, ll, 3, 5)         // [4,9) the new leader wrote in epoch 3
	fl.addLog("t", 0, ll)
	p.hw.Store(2)

	tf.follow(p, fl, 3)
	waitUntil(t, "follower converges", func() bool { return p.getLog().Offsets().End == 9 && p.hw.Load() == 9 })
	sameLogs(t, ll, p.getLog())
	seen := fl.fetches()
	first, second := seen[0].parts[topicPart{"t", 0}], seen[1].parts[topicPart{"t", 0}]
	if first.FetchOffset != 7 || first.LastFetchedEpoch != 2 {
		t.Fatalf("first fetch at %d epoch %d, want 7 epoch 2", first.FetchOffset, first.LastFetchedEpoch)
	}
	// Cut exactly to where epoch 1 ends on the leader: not to the HW (2),
	// not to the log start.
	if second.FetchOffset != 4 || second.LastFetchedEpoch != 1 {
		t.Fatalf("after the diverging epoch: fetch at %d epoch %d, want 4 epoch 1", second.FetchOffset, second.LastFetchedEpoch)
	}
}

func appendReplicaWait(l *segstore.Log, b []byte) error {
	done := make(chan error, 1)
	if _, err := l.AppendReplica(b, func(r segstore.AppendResult) { done <- r.Err }); err != nil {
		return err
	}
	return <-done
}

func TestReplicaFetcherBacksOff(t *testing.T) {
	// A leader not caught up with the metadata (waitForMetadata errors) is retried after 10 ms, doubling per
	// error in a row up to the backoff; any other error waits the whole backoff.
	const backoff = 300 * time.Millisecond
	f := func(codes []int16, minGaps []time.Duration, maxGap time.Duration) {
		t.Helper()
		fl := newFakeLeader(t)
		ll := testLog(t, testStore(t), "t", 0)
		appendN(t, ll, 0, 3)
		fl.addLog("t", 0, ll)
		fl.script("t", 0, codes...)
		tf := newTestFollower(t, func(c *fetcherConfig) { c.backoff = backoff })
		p := tf.partition("t", 0)
		tf.follow(p, fl, 0)
		waitUntil(t, "follower at LEO 3", func() bool { return p.getLog().Offsets().End == 3 })
		sameLogs(t, ll, p.getLog())
		seen := fl.fetches()
		if len(seen) < len(codes)+1 {
			t.Fatalf("errors %v: %d fetches, want %d refused and 1 answered", codes, len(seen), len(codes))
		}
		for i := 1; i <= len(codes); i++ {
			gap := seen[i].at.Sub(seen[i-1].at)
			if gap < minGaps[i-1] || gap > maxGap {
				t.Fatalf("errors %v: fetch %d came %v after a refused one, want %v..%v", codes, i, gap, minGaps[i-1], maxGap)
			}
			if rp := seen[i].parts[topicPart{"t", 0}]; rp.FetchOffset != 0 {
				t.Fatalf("errors %v: retry %d at offset %d", codes, i, rp.FetchOffset)
			}
		}
		if got := tf.counter("sluice_replica_fetch_errors_total"); got != uint64(len(codes)) {
			t.Fatalf("errors %v: errors counter %d, want %d", codes, got, len(codes))
		}
	}
	ms := time.Millisecond
	f([]int16{kerr.NotLeaderForPartition.Code, kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code},
		[]time.Duration{10 * ms, 20 * ms, 40 * ms}, backoff-50*ms)
	f([]int16{kerr.KafkaStorageError.Code}, []time.Duration{backoff}, 10*backoff)
}

func TestReplicaFetcherBackoffEndCutsPark(t *testing.T) {
	// Partition b's backoff ends while a's fetch would park for 5 s: the fetch parks no longer than the backoff,
	// so b is fetched again when its backoff ends.
	fl := newFakeLeader(t)
	lst := testStore(t)
	la, lb := testLog(t, lst, "a", 0), testLog(t, lst, "b", 0)
	appendN(t, la, 0, 1)
	appendN(t, lb, 0, 2)
	fl.addLog("a", 0, la)
	fl.addLog("b", 0, lb)
	const wait, backoff = 5 * time.Second, 200 * time.Millisecond
	fl.script("b", 0, kerr.KafkaStorageError.Code)
	tf := newTestFollower(t, func(c *fetcherConfig) { c.wait, c.backoff = wait, backoff })
	pa, pb := tf.partition("a", 0), tf.partition("b", 0)
	tf.follow(pa, fl, 0)
	tf.follow(pb, fl, 0)
	start := time.Now()
	waitUntil(t, "both replicated", func() bool { return pa.getLog().Offsets().End == 1 && pb.getLog().Offsets().End == 2 })
	if d := time.Since(start); d > wait/2 {
		t.Fatalf("b replicated after %v: a's fetch parked for the whole %v while b backed off %v", d, wait, backoff)
	}
	for _, s := range fl.fetches() {
		if _, hasB := s.parts[topicPart{"b", 0}]; !hasB && s.req.MaxWaitMillis > int32(backoff.Milliseconds())+1 {
			t.Fatalf("a fetch without b (backing off %v) may park %d ms", backoff, s.req.MaxWaitMillis)
		}
	}
}

func TestReplicaFetcherReconnects(t *testing.T) {
	fl := newFakeLeader(t)
	ll := testLog(t, testStore(t), "t", 0)
	appendN(t, ll, 0, 3)
	fl.addLog("t", 0, ll)
	fl.hook(func(n int, _ *kmsg.FetchRequest) bool { return n == 2 }) // cut the second fetch
	const backoff = 100 * time.Millisecond
	tf := newTestFollower(t, func(c *fetcherConfig) { c.backoff = backoff })
	p := tf.partition("t", 0)
	tf.follow(p, fl, 0)
	waitUntil(t, "follower at LEO 3", func() bool { return p.getLog().Offsets().End == 3 })
	appendN(t, ll, 0, 3)
	waitUntil(t, "follower at LEO 6", func() bool { return p.getLog().Offsets().End == 6 && p.hw.Load() == 6 })
	sameLogs(t, ll, p.getLog())
	if n := fl.connCount(); n != 2 {
		t.Fatalf("%d connections, want 2 (one cut, one redialled)", n)
	}
	seen := fl.fetches()
	if seen[1].conn != 0 || seen[2].conn != 1 || seen[len(seen)-1].conn != 1 {
		t.Fatalf("fetch 2 on conn %d, 3 on conn %d, last on conn %d", seen[1].conn, seen[2].conn, seen[len(seen)-1].conn)
	}
	if gap := seen[2].at.Sub(seen[1].at); gap < backoff {
		t.Fatalf("redialled %v after the cut, want >= %v", gap, backoff)
	}
	if got := tf.counter("sluice_replica_fetch_errors_total"); got != 1 {
		t.Fatalf("errors counter %d, want 1", got)
	}
}

func TestReplicaFetcherTwoPartitionsOneRequest(t *testing.T) {
	fl := newFakeLeader(t)
	lst := testStore(t)
	la, lb := testLog(t, lst, "a", 0), testLog(t, lst, "b", 3)
	appendN(t, la, 0, 2)
	appendN(t, lb, 0, 3)
	fl.addLog("a", 0, la)
	fl.addLog("b", 3, lb)
	// A long wait: the fetch parks at the leader once caught up; neither a
	// partition added then nor close may wait for it.
	const wait = 5 * time.Second
	tf := newTestFollower(t, func(c *fetcherConfig) { c.wait = wait })
	pa, pb := tf.partition("a", 0), tf.partition("b", 3)
	tf.follow(pa, fl, 0)
	parked := func() bool { // a fetch of a alone, caught up: the leader holds it
		for _, s := range fl.fetches() {
			if rp, ok := s.parts[topicPart{"a", 0}]; ok && len(s.parts) == 1 && rp.FetchOffset == 2 {
				return true
			}
		}
		return false
	}
	waitUntil(t, "partition a replicated and its next fetch parked", parked)
	time.Sleep(50 * time.Millisecond) // well into the park
	added := time.Now()
	tf.follow(pb, fl, 0)
	both := func() bool {
		for _, s := range fl.fetches() {
			if len(s.parts) == 2 && len(s.req.Topics) == 2 {
				return true
			}
		}
		return false
	}
	waitUntil(t, "both partitions replicated in one fetch", func() bool {
		return pb.getLog().Offsets().End == 3 && both()
	})
	if d := time.Since(added); d > wait/5 {
		t.Fatalf("partition b replicated %v after it was added: it waited for the parked fetch (%v)", d, wait)
	}
	sameLogs(t, la, pa.getLog())
	sameLogs(t, lb, pb.getLog())
	// The parked fetch was cut off by closing its connection (answers come
	// in order on one), once: a fetch is never in flight on two.
	if n := fl.connCount(); n != 2 {
		t.Fatalf("%d connections to one leader, want 2 (the first cut off once)", n)
	}
	if got := tf.counter("sluice_replica_fetch_errors_total"); got != 0 {
		t.Fatalf("errors counter %d after an interrupted fetch, want 0", got)
	}
	start := time.Now()
	tf.r.close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("close took %v with a fetch parked", d)
	}
}

func TestWholeBatches(t *testing.T) {
	b1, b2 := encodeBatch(1, []byte("x")), encodeBatch(2, []byte("yy"), []byte("z"))
	both := append(append([]byte(nil), b1...), b2...)
	f := func(name string, in []byte, want int) {
		t.Helper()
		if got := len(wholeBatches(in)); got != want {
			t.Fatalf("%s: %d bytes kept, want %d", name, got, want)
		}
	}
	f("empty", nil, 0)
	f("one", b1, len(b1))
	f("two", both, len(both))
	f("partial second", both[:len(b1)+len(b2)-1], len(b1))
	f("second's length cut", both[:len(b1)+10], len(b1))
	f("partial first", b1[:len(b1)-1], 0)
	corrupt := append([]byte(nil), both...)
	corrupt[len(b1)+8], corrupt[len(b1)+9] = 0xff, 0xff // negative length
	f("corrupt length kept for AppendReplica", corrupt, len(corrupt))
}
