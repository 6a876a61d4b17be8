package node

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/repl"
	"github.com/sluicemq/sluice/segstore"
)

// Tests of partitions leaving a fetcher: unfollow, a new leader, a new
// address.

// gatedLog holds the first replicated append until released.
type gatedLog struct {
	*segstore.Log
	once             sync.Once
	entered, release chan struct{}
}

func (g *gatedLog) AppendReplica(buf []byte, done func(segstore.AppendResult)) (int64, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Log.AppendReplica(buf, done)
}

func TestReplicaFetcherUnfollowWaitsForAppend(t *testing.T) {
	fl := newFakeLeader(t)
	ll := testLog(t, testStore(t), "t", 0)
	appendN(t, ll, 0, 3)
	fl.addLog("t", 0, ll)
	tf := newTestFollower(t, nil)
	p := tf.partition("t", 0)
	g := &gatedLog{Log: p.getLog(), entered: make(chan struct{}), release: make(chan struct{})}
	f := repl.NewFollower(repl.FollowerConfig{BrokerID: 2}, g, 1, 0, 0)
	tf.r.follow(p, f, 1, fl.addr)
	<-g.entered
	defer func() { // a failing test must not leave the fetcher stuck for the cleanup
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	}()

	unfollowed := make(chan struct{})
	go func() {
		tf.r.unfollow(p, f)
		close(unfollowed)
	}()
	select {
	case <-unfollowed:
		t.Fatal("unfollow returned while the append was being written")
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	select {
	case <-unfollowed:
	case <-time.After(5 * time.Second):
		t.Fatal("unfollow did not return after the append")
	}
	leo, hw := p.getLog().Offsets().End, p.hw.Load()
	if leo != 3 || hw != 3 {
		t.Fatalf("after the held append: LEO %d HW %d, want 3 3", leo, hw)
	}
	appendN(t, ll, 0, 3)
	time.Sleep(150 * time.Millisecond) // several fetch rounds, were p still followed
	tf.r.close()
	if got := p.getLog().Offsets().End; got != leo {
		t.Fatalf("appended after unfollow: LEO %d, was %d", got, leo)
	}
	if got := p.hw.Load(); got != hw {
		t.Fatalf("HW moved after unfollow: %d, was %d", got, hw)
	}
}

func TestReplicaFetcherUnfollowDropsAnswerInFlight(t *testing.T) {
	fl := newFakeLeader(t)
	lst := testStore(t)
	lp, lq := testLog(t, lst, "t", 0), testLog(t, lst, "t", 1)
	appendN(t, lp, 0, 3)
	fl.addLog("t", 0, lp)
	fl.addLog("t", 1, lq)
	var once sync.Once
	held, release := make(chan int), make(chan struct{})
	fl.hook(func(n int, req *kmsg.FetchRequest) bool {
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if rp.Partition == 0 {
					once.Do(func() { held <- n; <-release })
				}
			}
		}
		return false
	})
	tf := newTestFollower(t, nil)
	pp, pq := tf.partition("t", 0), tf.partition("t", 1)
	tf.follow(pq, fl, 0) // keeps the fetcher running after p leaves
	fp := tf.follow(pp, fl, 0)
	n := <-held

	start := time.Now()
	tf.r.unfollow(pp, fp)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("unfollow waited %v for a fetch parked at the leader", d)
	}
	close(release)
	// The fetcher handles an answer before it sends the next fetch.
	waitUntil(t, "the next fetch", func() bool { return len(fl.fetches()) > n+1 })
	if got := pp.getLog().Offsets().End; got != 0 {
		t.Fatalf("the answer in flight was appended after unfollow: LEO %d", got)
	}
	for _, s := range fl.fetches()[n:] {
		if _, ok := s.parts[topicPart{"t", 0}]; ok {
			t.Fatal("partition still fetched after unfollow")
		}
	}
}

func TestReplicaFetcherMovesToNewLeader(t *testing.T) {
	a, b := newFakeLeader(t), newFakeLeader(t)
	la := testLog(t, testStore(t), "t", 0)
	appendN(t, la, 1, 3)
	a.addLog("t", 0, la)
	lb := testLog(t, testStore(t), "t", 0)
	if err := appendReplicaWait(lb, logBytes(t, la)); err != nil {
		t.Fatal(err)
	}
	appendN(t, lb, 2, 2)
	b.addLog("t", 0, lb)

	tf := newTestFollower(t, nil)
	p := tf.partition("t", 0)
	tf.follow(p, a, 1)
	waitUntil(t, "follower at LEO 3 from broker 1", func() bool { return p.getLog().Offsets().End == 3 })
	f := repl.NewFollower(repl.FollowerConfig{BrokerID: 2}, p.getLog(), 3, 2, p.hw.Load())
	tf.r.follow(p, f, 3, b.addr)
	waitUntil(t, "follower at LEO 5 from broker 3", func() bool { return p.getLog().Offsets().End == 5 })
	sameLogs(t, lb, p.getLog())
	waitUntil(t, "broker 1's fetcher stopped", func() bool {
		tf.r.mu.Lock()
		defer tf.r.mu.Unlock()
		return len(tf.r.fetchers) == 1 && tf.r.fetchers[3] != nil
	})
	before := len(a.fetches())
	time.Sleep(100 * time.Millisecond)
	if after := len(a.fetches()); after != before {
		t.Fatalf("old leader still fetched from: %d fetches, then %d", before, after)
	}
}

func TestReplicaFetcherFollowsAddressChange(t *testing.T) {
	// Broker 1 restarts on another port: same id, new address, new epoch.
	a, b := newFakeLeader(t), newFakeLeader(t)
	la := testLog(t, testStore(t), "t", 0)
	appendN(t, la, 1, 2)
	a.addLog("t", 0, la)
	lb := testLog(t, testStore(t), "t", 0)
	if err := appendReplicaWait(lb, logBytes(t, la)); err != nil {
		t.Fatal(err)
	}
	appendN(t, lb, 2, 3)
	b.addLog("t", 0, lb)

	tf := newTestFollower(t, nil)
	p := tf.partition("t", 0)
	tf.follow(p, a, 1)
	waitUntil(t, "follower at LEO 2 from the old address", func() bool { return p.getLog().Offsets().End == 2 })
	f := repl.NewFollower(repl.FollowerConfig{BrokerID: 2}, p.getLog(), 1, 2, p.hw.Load())
	tf.r.follow(p, f, 1, b.addr)
	waitUntil(t, "follower at LEO 5 from the new address", func() bool { return p.getLog().Offsets().End == 5 })
	sameLogs(t, lb, p.getLog())
	if n := b.connCount(); n != 1 {
		t.Fatalf("%d connections to the new address", n)
	}
}
