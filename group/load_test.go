package group

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// successor starts a coordinator on h's log at h's time, as after a
// leadership move, and loads every partition.
func (h *harness) successor(t *testing.T, mods ...func(*Config)) *harness {
	t.Helper()
	h.c.Close()
	next := newHarnessOn(t, h.log, mods...)
	next.clock.now = h.clock.Now()
	for p := int32(0); p < 50; p++ {
		if err := next.c.Load(p, h.log.iter(p)); err != nil {
			t.Fatal(err)
		}
	}
	return next
}

func TestLoadRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.do(commitReq("solo", "", -1, map[string]int64{"t2/0": 1, "t2/1": 2, "t3/0": 3}))
	h.do(offsetDeleteReq("solo", "t2/1"))
	h.do(commitReq("gone", "", -1, map[string]int64{"t1/0": 1}))
	h.deleteGroups("gone")
	lids, _ := h.stableGroup("left", 1)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = "left"
	lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: lids[0]}}
	h.do(lr)
	// The live groups last: their sessions (10s) outlast the rest of the test's clock.
	sids, sgen := h.staticGroup("s", 2)
	ids, gen := h.stableGroup("g", 2)
	h.do(commitReq("g", ids[1], gen, map[string]int64{"t1/0": 10, "t1/1": 11}))
	h.do(commitReq("g", ids[1], gen, map[string]int64{"t1/0": 20})) // overwritten value

	groups := []string{"g", "s", "solo", "gone", "left"}
	type snap struct {
		d kmsg.DescribeGroupsResponseGroup
		o map[string]int64
	}
	take := func(h *harness) map[string]snap {
		out := map[string]snap{}
		for _, g := range groups {
			out[g] = snap{h.describe(g), h.fetch(g)}
		}
		return out
	}
	before := take(h)
	h2 := h.successor(t)
	after := take(h2)
	for _, g := range groups {
		if !reflect.DeepEqual(before[g], after[g]) {
			t.Fatalf("group %s:\nbefore %+v\nafter  %+v", g, before[g], after[g])
		}
	}
	if before["g"].o["t1/0"] != 20 || before["g"].d.State != "Stable" || before["s"].d.State != "Stable" ||
		before["gone"].d.State != "Dead" || before["left"].d.State != "Empty" || len(before["solo"].o) != 2 {
		t.Fatalf("scenario did not do what it should: %+v", before)
	}

	// The loaded members carry on: the same generation works, static ids are
	// still fenced, and a member that stays silent expires.
	wantCode(t, "loaded member", h2.heartbeat("g", ids[0], gen), 0)
	wantCode(t, "loaded static member", h2.heartbeat("s", sids[1], sgen, "i-1"), 0)
	wantCode(t, "fenced", h2.heartbeat("s", ids[0], sgen, "i-1"), kerr.FencedInstanceID.Code)
	for i := 0; i < 4; i++ {
		h2.clock.Advance(3 * time.Second)
		h2.heartbeat("g", ids[0], gen)
	}
	if st := h2.state("g"); st != "PreparingRebalance" {
		t.Fatalf("silent loaded member did not expire: %s", st)
	}
	// The generation continues from the loaded one.
	r := joinResp(t, h2.send(joinReq("g", ids[0])))
	if r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("gen %d members %d", r.Generation, len(r.Members))
	}

	// And a third coordinator sees what the second wrote after the first.
	h2.do(syncReq("g", ids[0], r.Generation, map[string][]byte{ids[0]: []byte("x")}))
	h3 := h2.successor(t)
	d := h3.describe("g")
	if d.State != "Stable" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "x" {
		t.Fatalf("third load %+v", d)
	}
}

func TestLoadSkipsBadRecords(t *testing.T) {
	h := newHarnessOn(t, newFakeLog())
	p := PartitionFor("g", 50)
	good := commitRecord("g", "t1", 0, 5)
	misplaced := commitRecord("other", "t1", 0, 5) // "other" hashes elsewhere
	if PartitionFor("other", 50) == p {
		t.Fatal("test groups collide")
	}
	recs := []Record{
		{Key: []byte{0}, Value: []byte{1}},                  // short key
		{Key: good.Key, Value: []byte{0, 3, 1}},             // truncated value
		{Key: []byte{0, 9, 0, 0}, Value: []byte{1, 2, 3}},   // a future record type: ignored
		{Key: misplaced.Key, Value: misplaced.Value},        // wrong partition
		{Key: groupKey("g"), Value: []byte{0, 42, 0, 0, 0}}, // unknown value version
		good,
	}
	err := h.c.Load(p, func(yield func(k, v []byte) bool) {
		for _, r := range recs {
			if !yield(r.Key, r.Value) {
				return
			}
		}
	})
	var le *LoadError
	if !errors.As(err, &le) || le.Skipped != 4 || le.Partition != p || !strings.Contains(err.Error(), "skipped 4") {
		t.Fatalf("err %v", err)
	}
	if !h.c.Owns(p) {
		t.Fatal("partition not loaded after skipping records")
	}
	if got := h.fetch("g"); got["t1/0"] != 5 {
		t.Fatalf("good record lost: %v", got)
	}
}

func commitRecord(group, topic string, part int32, offset int64) Record {
	e := offsetEntry{offset: offset, leaderEpoch: -1, expireMs: -1}
	return Record{Key: offsetKey(nil, group, tp{topic, part}), Value: offsetValue(nil, &e)}
}

func TestRequestsWhileLoading(t *testing.T) {
	src := newHarness(t)
	ids, gen := src.stableGroup("g", 1)
	p := PartitionFor("g", 50)

	h := newHarnessOn(t, src.log)
	h.clock.now = src.clock.Now()
	checked := false
	err := h.c.Load(p, func(yield func(k, v []byte) bool) {
		// Mid-load, as another goroutine would see it.
		jr := h.do(joinReq("g", "")).(*kmsg.JoinGroupResponse)
		wantCode(t, "join", jr.ErrorCode, kerr.CoordinatorLoadInProgress.Code)
		wantCode(t, "heartbeat", h.heartbeat("g", ids[0], gen), 0)
		sr := h.do(syncReq("g", ids[0], gen, nil)).(*kmsg.SyncGroupResponse)
		wantCode(t, "sync", sr.ErrorCode, kerr.RebalanceInProgress.Code)
		for _, code := range commitCodes(h.do(commitReq("g", ids[0], gen, map[string]int64{"t1/0": 1}))) {
			wantCode(t, "commit", code, kerr.CoordinatorLoadInProgress.Code)
		}
		lr := kmsg.NewPtrListGroupsRequest()
		wantCode(t, "list", h.do(lr).(*kmsg.ListGroupsResponse).ErrorCode, kerr.CoordinatorLoadInProgress.Code)
		if h.c.Owns(p) {
			t.Fatal("owned while loading")
		}
		checked = true
		for _, r := range src.log.records(p) {
			if !yield(r.Key, r.Value) {
				return
			}
		}
	})
	if err != nil || !checked {
		t.Fatal(err)
	}
	wantCode(t, "heartbeat after load", h.heartbeat("g", ids[0], gen), 0)
	wantCode(t, "other partition", h.heartbeat("solo", "m", 1), kerr.NotCoordinator.Code)
}

func TestUnloadAnswersParkedRequests(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 2)
	lead := h.send(joinReq("g", ids[0]))
	h.c.Unload(PartitionFor("g", 50))
	r := lead.get().(*kmsg.JoinGroupResponse)
	wantCode(t, "parked join", r.ErrorCode, kerr.NotCoordinator.Code)
	wantCode(t, "heartbeat", h.heartbeat("g", ids[1], gen), kerr.NotCoordinator.Code)
	if h.c.Owns(PartitionFor("g", 50)) {
		t.Fatal("still owned")
	}
	h.clock.Advance(time.Hour) // timers of the unloaded group must not fire into anything
}

func TestUnloadDuringLoadDiscards(t *testing.T) {
	h := newHarnessOn(t, newFakeLog())
	p := PartitionFor("g", 50)
	rec := commitRecord("g", "t1", 0, 5)
	err := h.c.Load(p, func(yield func(k, v []byte) bool) {
		h.c.Unload(p)
		yield(rec.Key, rec.Value)
	})
	if err == nil || h.c.Owns(p) {
		t.Fatalf("err %v owns %v", err, h.c.Owns(p))
	}
	if err := h.c.Load(p, func(yield func(k, v []byte) bool) { yield(rec.Key, rec.Value) }); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Load(p, func(func(k, v []byte) bool) {}); err == nil {
		t.Fatal("loaded twice")
	}
	if err := h.c.Load(50, func(func(k, v []byte) bool) {}); err == nil {
		t.Fatal("loaded a partition out of range")
	}
}

func TestCloseAnswersParkedRequests(t *testing.T) {
	h := newHarness(t)
	c := h.join("g")
	h.c.Close()
	wantCode(t, "parked join", c.get().(*kmsg.JoinGroupResponse).ErrorCode, kerr.NotCoordinator.Code)
	wantCode(t, "after close", h.heartbeat("g", "m", 1), kerr.CoordinatorNotAvailable.Code)
	wantCode(t, "list after close", h.do(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse).ErrorCode,
		kerr.CoordinatorNotAvailable.Code)
	if err := h.c.Load(0, func(func(k, v []byte) bool) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("load after close: %v", err)
	}
	if len(h.c.Groups()) != 0 {
		t.Fatal("groups after close")
	}
}

func TestSyncStoreFailureRebalances(t *testing.T) {
	f := func(err error, want int16) {
		t.Helper()
		h := newHarness(t)
		a, b := h.join("g"), h.join("g")
		h.clock.Advance(6 * time.Second)
		ra, rb := joinResp(t, a), joinResp(t, b)
		sb := h.send(syncReq("g", rb.MemberID, rb.Generation, nil))
		h.log.setFail(err)
		sa := h.send(syncReq("g", ra.MemberID, ra.Generation, map[string][]byte{ra.MemberID: []byte("a")}))
		wantCode(t, "leader", sa.get().(*kmsg.SyncGroupResponse).ErrorCode, want)
		wantCode(t, "follower", sb.get().(*kmsg.SyncGroupResponse).ErrorCode, want)
		if st := h.state("g"); st != "PreparingRebalance" {
			t.Fatalf("state %s", st)
		}
		h.log.setFail(nil)
		// The members rejoin and the group recovers.
		a = h.send(joinReq("g", ra.MemberID))
		b = h.send(joinReq("g", rb.MemberID))
		if r := joinResp(t, a); r.Generation != ra.Generation+1 {
			t.Fatalf("gen %d", r.Generation)
		}
		joinResp(t, b)
	}
	f(errors.New("io"), kerr.CoordinatorNotAvailable.Code)
	f(kerr.KafkaStorageError, kerr.NotCoordinator.Code)
	f(kerr.RequestTimedOut, kerr.RebalanceInProgress.Code)
}

func TestSyncAnsweredOnlyWhenDurable(t *testing.T) {
	h := newHarness(t)
	c := h.join("g")
	h.clock.Advance(3 * time.Second)
	r := joinResp(t, c)
	h.log.setHold(true)
	s := h.send(syncReq("g", r.MemberID, r.Generation, nil))
	if s.answered() || h.state("g") != "CompletingRebalance" {
		t.Fatal("stable before the group record was durable")
	}
	h.log.release(nil)
	wantCode(t, "sync", s.get().(*kmsg.SyncGroupResponse).ErrorCode, 0)
	if h.state("g") != "Stable" {
		t.Fatal("not stable")
	}
}

func TestStaticReplaceStoreFailureReverts(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.staticGroup("g", 2)
	h.log.setFail(errors.New("io"))
	r := h.do(joinReq("g", "", withInstance("i-1"))).(*kmsg.JoinGroupResponse)
	wantCode(t, "join", r.ErrorCode, kerr.CoordinatorNotAvailable.Code)
	if r.MemberID != "" || r.Generation != gen {
		t.Fatalf("%+v", r)
	}
	// The old incarnation is still the member.
	wantCode(t, "old id", h.heartbeat("g", ids[1], gen, "i-1"), 0)
}

// TestLoadWithinCapacityStaysStable is the control: a loaded group at the
// limit does not rebalance.
func TestLoadWithinCapacityStaysStable(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 2)
	h2 := h.successor(t, func(c *Config) { c.MaxSize = 2 })
	if got := h2.c.Groups(); got["Stable"] != 1 || len(got) != 1 {
		t.Fatalf("groups %v", got)
	}
	wantCode(t, "heartbeat", h2.heartbeat("g", ids[0], gen), 0)
}

func TestMaxSizeLoweredKicksLastRejoiner(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 3)
	h2 := h.successor(t, func(c *Config) { c.MaxSize = 2 })
	// Over capacity after the load: it rebalances at once (Kafka's
	// onGroupLoaded), so the members learn it from their next heartbeat.
	if got := h2.c.Groups(); got["PreparingRebalance"] != 1 || len(got) != 1 {
		t.Fatalf("groups %v", got)
	}
	wantCode(t, "heartbeat", h2.heartbeat("g", ids[0], gen), kerr.RebalanceInProgress.Code)
	a := h2.send(joinReq("g", ids[0]))
	b := h2.send(joinReq("g", ids[1]))
	c := h2.do(joinReq("g", ids[2])).(*kmsg.JoinGroupResponse)
	wantCode(t, "third rejoin", c.ErrorCode, kerr.GroupMaxSizeReached.Code)
	if r := joinResp(t, a); r.Generation != gen+1 || len(r.Members) != 2 {
		t.Fatalf("gen %d members %d", r.Generation, len(r.Members))
	}
	joinResp(t, b)
	if got := h2.c.Groups(); got["CompletingRebalance"] != 1 {
		t.Fatalf("groups %v", got)
	}
}
