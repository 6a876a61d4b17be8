package repl

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/segstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memLeaderLog is a LeaderLog with a settable LEO and epoch history.
type memLeaderLog struct {
	start, end int64
	epochs     []segstore.EpochEntry
}

func (m *memLeaderLog) Offsets() segstore.Offsets {
	return segstore.Offsets{Start: m.start, End: m.end, Durable: m.end}
}
func (m *memLeaderLog) EndOffsetForEpoch(e int32) (int32, int64) {
	return endOffsetFor(m.epochs, m.end, e)
}
func (m *memLeaderLog) Epochs() []segstore.EpochEntry { return m.epochs }

// leaderRig is a Leader over a memLeaderLog that records its AlterPartition
// proposals.
type leaderRig struct {
	t      *testing.T
	clock  *fakeClock
	log    *memLeaderLog
	l      *Leader
	alters []AlterRequest
}

func newLeaderRig(t *testing.T, minISR int, isr []int32, leo int64) *leaderRig {
	r := &leaderRig{t: t, clock: newFakeClock(), log: &memLeaderLog{end: leo, epochs: []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 3, StartOffset: 0}}}}
	if leo == 0 {
		r.log.epochs = nil
	}
	cfg := LeaderConfig{BrokerID: 1, MinISR: minISR, Clock: r.clock,
		AlterPartition: func(a AlterRequest) { r.alters = append(r.alters, a) }}
	r.l = NewLeader(cfg, r.log, PartitionState{Leader: 1, LeaderEpoch: 3, PartitionEpoch: 10, Replicas: []int32{1, 2, 3}, ISR: isr}, 0)
	return r
}

func (r *leaderRig) fetch(id int32, off int64) FetchDecision {
	r.t.Helper()
	d := r.l.HandleFetch(FetchRequest{ReplicaID: id, CurrentLeaderEpoch: 3, FetchOffset: off, LastFetchedEpoch: 3})
	if d.Err != nil || d.Diverging != nil {
		r.t.Fatalf("fetch %d at %d: %+v", id, off, d)
	}
	return d
}

// confirm answers the last proposal as the controller would.
func (r *leaderRig) confirm() {
	r.t.Helper()
	a := r.alters[len(r.alters)-1]
	r.l.AlterPartitionDone(AlterResponse{LeaderEpoch: a.LeaderEpoch, PartitionEpoch: a.PartitionEpoch + 1, ISR: a.ISR})
}

func (r *leaderRig) wantISR(want []int32, pending bool) {
	r.t.Helper()
	got, p := r.l.ISR()
	if !reflect.DeepEqual(got, want) || p != pending {
		r.t.Fatalf("ISR %v pending %v, want %v pending %v", got, p, want, pending)
	}
}

func (r *leaderRig) wantHW(want int64) {
	r.t.Helper()
	if got := r.l.HighWatermark(); got != want {
		r.t.Fatalf("HW %d, want %d", got, want)
	}
}

func TestHighWatermarkIsMinLEOOverISRAndNeverRegresses(t *testing.T) {
	r := newLeaderRig(t, 1, []int32{1, 2, 3}, 10)
	r.wantHW(0)
	r.fetch(2, 10)
	r.wantHW(0) // follower 3 not heard from in this epoch
	r.fetch(3, 4)
	r.wantHW(4)
	r.fetch(3, 7)
	r.wantHW(7)
	r.log.end = 15 // a local append
	r.l.OnAppended()
	r.wantHW(7)
	r.fetch(2, 15)
	r.fetch(3, 15)
	r.wantHW(15)
	// A follower fetching from lower (it truncated, or a stale request) does
	// not pull the HW back.
	r.fetch(3, 12)
	r.wantHW(15)
	// The HW never passes the leader's own LEO.
	r2 := newLeaderRig(t, 1, []int32{1}, 5)
	r2.l.OnAppended()
	r2.wantHW(5)
}

func TestISRShrinkAndExpandTiming(t *testing.T) {
	r := newLeaderRig(t, 1, []int32{1, 2, 3}, 10)
	r.fetch(2, 10)
	r.fetch(3, 5)
	r.wantHW(5)
	r.clock.Advance(DefaultLagTimeMax)
	r.l.Tick()
	if len(r.alters) != 0 {
		t.Fatalf("shrink at exactly lag.time.max: %+v", r.alters)
	}
	r.fetch(2, 10) // 2 stays caught up
	r.clock.Advance(time.Millisecond)
	r.l.Tick()
	if len(r.alters) != 1 || !reflect.DeepEqual(r.alters[0].ISR, []int32{1, 2}) || r.alters[0].PartitionEpoch != 10 {
		t.Fatalf("want a shrink proposal to [1 2] on partition epoch 10: %+v", r.alters)
	}
	// Pending: the maximal ISR still includes 3, so the HW waits for it.
	r.wantISR([]int32{1, 2, 3}, true)
	r.wantHW(5)
	r.l.Tick() // no second proposal while one is in flight
	if len(r.alters) != 1 {
		t.Fatalf("second proposal while pending: %+v", r.alters)
	}
	r.confirm()
	r.wantISR([]int32{1, 2}, false)
	r.wantHW(10)

	// Expansion: 3 fetching below the HW stays out; at the HW it is proposed.
	r.fetch(3, 8)
	if len(r.alters) != 1 {
		t.Fatalf("expansion below the HW: %+v", r.alters)
	}
	r.fetch(3, 10)
	if len(r.alters) != 2 || !reflect.DeepEqual(r.alters[1].ISR, []int32{1, 2, 3}) || r.alters[1].PartitionEpoch != 11 {
		t.Fatalf("want an expansion proposal to [1 2 3] on partition epoch 11: %+v", r.alters)
	}
	// A refused proposal is dropped and proposed again on the next fetch.
	r.l.AlterPartitionDone(AlterResponse{LeaderEpoch: 3, Err: kerr.InvalidUpdateVersion})
	r.wantISR([]int32{1, 2}, false)
	r.fetch(3, 10)
	if len(r.alters) != 3 {
		t.Fatalf("no new proposal after a refusal: %+v", r.alters)
	}
	r.confirm()
	r.wantISR([]int32{1, 2, 3}, false)

	// A follower at the leader's LEO is in sync however long ago it caught up.
	r.clock.Advance(time.Hour)
	r.l.Tick()
	if len(r.alters) != 3 {
		t.Fatalf("shrink of followers at the LEO: %+v", r.alters[3:])
	}
}

func TestExpansionNeedsEpochStart(t *testing.T) {
	// The leader took epoch 3 at LEO 10 with HW 0: a follower at 5 has
	// reached the HW but not this epoch's start.
	r := newLeaderRig(t, 1, []int32{1}, 10)
	r.fetch(2, 5)
	if len(r.alters) != 0 {
		t.Fatalf("expansion before the epoch start: %+v", r.alters)
	}
	r.fetch(2, 10)
	if len(r.alters) != 1 {
		t.Fatal("no expansion at the epoch start")
	}
}

func TestFetchEpochChecks(t *testing.T) {
	r := newLeaderRig(t, 1, []int32{1, 2, 3}, 10)
	r.log.epochs = []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 4}, {Epoch: 3, StartOffset: 7}}
	f := func(name string, req FetchRequest, wantErr error, wantDiv *EpochEnd) {
		t.Helper()
		d := r.l.HandleFetch(req)
		if !errors.Is(d.Err, wantErr) || (wantErr == nil) != (d.Err == nil) {
			t.Fatalf("%s: err %v, want %v", name, d.Err, wantErr)
		}
		if !reflect.DeepEqual(d.Diverging, wantDiv) {
			t.Fatalf("%s: diverging %+v, want %+v", name, d.Diverging, wantDiv)
		}
	}
	f("fenced", FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: 2, FetchOffset: 3, LastFetchedEpoch: 0}, kerr.FencedLeaderEpoch, nil)
	f("unknown epoch", FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: 4, FetchOffset: 3, LastFetchedEpoch: 0}, kerr.UnknownLeaderEpoch, nil)
	f("not a replica", FetchRequest{ReplicaID: 9, CurrentLeaderEpoch: 3, FetchOffset: 3}, kerr.NotLeaderForPartition, nil)
	f("epoch 0 ends at 4 here, follower has more", FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: 3, FetchOffset: 6, LastFetchedEpoch: 0}, nil, &EpochEnd{0, 4})
	f("follower's epoch 1 is unknown", FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: 3, FetchOffset: 4, LastFetchedEpoch: 1}, nil, &EpochEnd{0, 4})
	f("consistent", FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: 3, FetchOffset: 6, LastFetchedEpoch: 2}, nil, nil)
	f("past the LEO in the current epoch: diverging", FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: 3, FetchOffset: 11, LastFetchedEpoch: 3}, nil, &EpochEnd{3, 10})
	f("past the LEO", FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: 3, FetchOffset: 11, LastFetchedEpoch: -1}, kerr.OffsetOutOfRange, nil)
	f("no epoch given", FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: -1, FetchOffset: 10, LastFetchedEpoch: -1}, nil, nil)
}

func TestMinInsyncReplicas(t *testing.T) {
	r := newLeaderRig(t, 2, []int32{1, 2, 3}, 10)
	if err := r.l.CheckAppend(-1); err != nil {
		t.Fatal(err)
	}
	results := map[string]error{}
	wait := func(name string, last int64, timeout time.Duration) {
		r.l.WaitForAcks(last, timeout, func(err error) {
			if _, dup := results[name]; dup {
				t.Errorf("%s completed twice", name)
			}
			results[name] = err
		})
	}
	want := func(name string, err error) {
		t.Helper()
		got, ok := results[name]
		if !ok || !errors.Is(got, err) || (err == nil) != (got == nil) {
			t.Fatalf("%s: done %v (%v), want %v", name, got, ok, err)
		}
	}
	wait("a", 4, time.Minute)
	wait("b", 9, time.Minute)
	wait("late", 9, time.Second)
	r.fetch(2, 10)
	r.fetch(3, 5)
	want("a", nil)
	if _, ok := results["b"]; ok {
		t.Fatal("b done before the HW reached it")
	}
	r.clock.Advance(time.Second)
	r.l.Tick()
	want("late", kerr.RequestTimedOut)

	// The leader appends on; both followers stop fetching and fall out of
	// the ISR: b completes once the HW covers it, with too few replicas.
	r.log.end = 12
	r.l.OnAppended()
	r.clock.Advance(DefaultLagTimeMax + time.Second)
	r.l.Tick()
	r.confirm()
	r.wantISR([]int32{1}, false)
	want("b", kerr.NotEnoughReplicasAfterAppend)
	if err := r.l.CheckAppend(-1); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("CheckAppend acks=all with ISR [1]: %v", err)
	}
	if err := r.l.CheckAppend(1); err != nil {
		t.Fatalf("CheckAppend acks=1 with ISR [1]: %v", err)
	}
	wait("c", 12, time.Minute)
	r.l.Resign()
	want("c", kerr.NotLeaderForPartition)
	if err := r.l.CheckAppend(1); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("CheckAppend after Resign: %v", err)
	}
}

// TestDivergenceAgainstUnwrittenEpoch: a new leader whose log holds nothing
// of its own epoch yet (here: an empty log in epoch 1) answers a follower
// that fetched epoch 0 batches as Kafka's leader, whose epoch cache got the
// new epoch at election: epoch 0 ends at 0, so the follower truncates
// everything it has. Before, the answer was (-1, -1), which the follower
// cannot act on.
func TestDivergenceAgainstUnwrittenEpoch(t *testing.T) {
	log := &memLeaderLog{}
	l := NewLeader(LeaderConfig{BrokerID: 2, Clock: newFakeClock(), AlterPartition: func(AlterRequest) {}}, log,
		PartitionState{Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}}, 0)
	d := l.HandleFetch(FetchRequest{ReplicaID: 3, CurrentLeaderEpoch: 1, FetchOffset: 1, LastFetchedEpoch: 0})
	if d.Err != nil || d.Diverging == nil || *d.Diverging != (EpochEnd{Epoch: 0, EndOffset: 0}) {
		t.Fatalf("decision %+v, diverging %+v; want diverging (0, 0)", d, d.Diverging)
	}
	got, err := l.EndOffsetForEpoch(1, 0)
	if err != nil || got != (EpochEnd{Epoch: 0, EndOffset: 0}) {
		t.Fatalf("EndOffsetForEpoch(0) = %+v, %v; want (0, 0)", got, err)
	}
	// With epoch 0 batches [0, 5) and epoch 1 not written yet (LEO 5).
	log.end, log.epochs = 5, []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}}
	l = NewLeader(LeaderConfig{BrokerID: 2, Clock: newFakeClock(), AlterPartition: func(AlterRequest) {}}, log,
		PartitionState{Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}}, 0)
	d = l.HandleFetch(FetchRequest{ReplicaID: 3, CurrentLeaderEpoch: 1, FetchOffset: 7, LastFetchedEpoch: 0})
	if d.Diverging == nil || *d.Diverging != (EpochEnd{Epoch: 0, EndOffset: 5}) {
		t.Fatalf("diverging %+v, want (0, 5)", d.Diverging)
	}
}
