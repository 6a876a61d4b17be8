package group

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *harness) deleteGroups(groups ...string) map[string]int16 {
	h.t.Helper()
	r := kmsg.NewPtrDeleteGroupsRequest()
	r.Version = 2
	r.Groups = groups
	out := map[string]int16{}
	for _, g := range h.do(r).(*kmsg.DeleteGroupsResponse).Groups {
		out[g.Group] = g.ErrorCode
	}
	return out
}

func offsetDeleteReq(group string, tps ...string) *kmsg.OffsetDeleteRequest {
	r := kmsg.NewPtrOffsetDeleteRequest()
	r.Group = group
	for _, k := range tps {
		topic, p := splitTP(k)
		r.Topics = append(r.Topics, kmsg.OffsetDeleteRequestTopic{Topic: topic,
			Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: p}}})
	}
	return r
}

func offsetDeleteCodes(r *kmsg.OffsetDeleteResponse) map[string]int16 {
	out := map[string]int16{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out[t.Topic+"/"+itoa(p.Partition)] = p.ErrorCode
		}
	}
	return out
}

// tombstones lists the keys written with nil values on g's partition.
func (h *harness) tombstones(group string) (offsets []string, groupGone bool) {
	for _, r := range h.log.records(PartitionFor(group, 50)) {
		if r.Value != nil {
			continue
		}
		k, err := parseKey(r.Key)
		if err != nil || k.group != group {
			continue
		}
		if k.kind == keyGroup {
			groupGone = true
		} else {
			offsets = append(offsets, k.tp.topic+"/"+itoa(k.tp.partition))
		}
	}
	slices.Sort(offsets)
	return offsets, groupGone
}

func TestDeleteGroups(t *testing.T) {
	h := newHarness(t)
	h.do(commitReq("solo", "", -1, map[string]int64{"t1/0": 1, "t1/1": 1}))
	ids, gen := h.stableGroup("live", 1)
	h.do(commitReq("live", ids[0], gen, map[string]int64{"t2/0": 5}))
	h.stableGroup("left", 1)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = "left"
	lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: h.describe("left").Members[0].MemberID}}
	h.do(lr)
	h.c.Unload(PartitionFor("elsewhere", 50)) // 4; "ghost" is on 29

	got := h.deleteGroups("solo", "live", "left", "ghost", "elsewhere")
	want := map[string]int16{
		"solo":      0,
		"live":      kerr.NonEmptyGroup.Code,
		"left":      0,
		"ghost":     kerr.GroupIDNotFound.Code,
		"elsewhere": kerr.NotCoordinator.Code,
	}
	for g, w := range want {
		wantCode(t, g, got[g], w)
	}
	if h.state("solo") != "Dead" || h.state("left") != "Dead" || h.state("live") != "Stable" {
		t.Fatal("wrong groups deleted")
	}
	if len(h.fetch("solo")) != 0 || len(h.fetch("live")) != 1 {
		t.Fatal("offsets not deleted with their group")
	}
	// A generation-0 group (offsets only) never had a metadata record: no tombstone for it.
	offs, gone := h.tombstones("solo")
	if !slices.Equal(offs, []string{"t1/0", "t1/1"}) || gone {
		t.Fatalf("solo tombstones %v %v", offs, gone)
	}
	if _, gone := h.tombstones("left"); !gone {
		t.Fatal("no group tombstone for a group with generations")
	}
	// The name can be used again at once.
	h.do(commitReq("solo", "", -1, map[string]int64{"t1/0": 9}))
	if h.fetch("solo")["t1/0"] != 9 {
		t.Fatal("group not reusable")
	}
}

func TestDeleteGroupsAppendFailure(t *testing.T) {
	h := newHarness(t)
	h.do(commitReq("solo", "", -1, map[string]int64{"t1/0": 1}))
	h.log.setHold(true)
	r := kmsg.NewPtrDeleteGroupsRequest()
	r.Version = 1
	r.Groups = []string{"solo"}
	c := h.send(r)
	if c.answered() {
		t.Fatal("answered before the tombstones were durable")
	}
	h.log.release(kerr.NotLeaderForPartition)
	wantCode(t, "delete", c.get().(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.NotCoordinator.Code)
}

func TestOffsetDeleteRules(t *testing.T) {
	h := newHarness(t)
	f := func(req *kmsg.OffsetDeleteRequest, wantTop int16, want map[string]int16) {
		t.Helper()
		r := h.do(req).(*kmsg.OffsetDeleteResponse)
		wantCode(t, "top", r.ErrorCode, wantTop)
		got := offsetDeleteCodes(r)
		if len(got) != len(want) {
			t.Fatalf("partitions %v, want %v", got, want)
		}
		for k, w := range want {
			wantCode(t, k, got[k], w)
		}
	}
	f(offsetDeleteReq(""), kerr.InvalidGroupID.Code, nil)
	f(offsetDeleteReq("nope", "t1/0"), kerr.GroupIDNotFound.Code, nil)

	// A live consumer group: only topics it does not subscribe to.
	ids, gen := h.stableGroup("g", 1) // subscribed to t1
	h.do(commitReq("g", ids[0], gen, map[string]int64{"t1/0": 1, "t2/0": 2}))
	f(offsetDeleteReq("g", "t1/0", "t2/0", "zz/0"), 0, map[string]int16{
		"t1/0": kerr.GroupSubscribedToTopic.Code,
		"t2/0": 0,
		"zz/0": kerr.UnknownTopicOrPartition.Code,
	})
	if got := h.fetch("g"); len(got) != 1 || got["t1/0"] != 1 {
		t.Fatalf("fetch %v", got)
	}
	if offs, _ := h.tombstones("g"); !slices.Equal(offs, []string{"t2/0"}) {
		t.Fatalf("tombstones %v", offs)
	}

	// A live group of another protocol type: refused whole.
	c := h.join("connect", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "connect" })
	h.clock.Advance(3 * time.Second)
	jr := joinResp(t, c)
	h.do(commitReq("connect", jr.MemberID, jr.Generation, map[string]int64{"t2/0": 2}))
	f(offsetDeleteReq("connect", "t2/0"), kerr.NonEmptyGroup.Code, nil)

	// An Empty group: anything goes, and with no offsets left the group is gone.
	h.do(commitReq("solo", "", -1, map[string]int64{"t1/0": 1, "t1/1": 1}))
	f(offsetDeleteReq("solo", "t1/0", "t3/3"), 0, map[string]int16{"t1/0": 0, "t3/3": 0})
	if h.state("solo") != "Empty" {
		t.Fatal("group with offsets left died")
	}
	f(offsetDeleteReq("solo", "t1/1"), 0, map[string]int16{"t1/1": 0})
	if h.state("solo") != "Dead" {
		t.Fatal("group without offsets survived")
	}
}

func TestOffsetDeleteAppendFailure(t *testing.T) {
	h := newHarness(t)
	h.do(commitReq("solo", "", -1, map[string]int64{"t1/0": 1, "t1/1": 1}))
	h.log.setFail(errors.New("boom"))
	r := h.do(offsetDeleteReq("solo", "t1/0")).(*kmsg.OffsetDeleteResponse)
	wantCode(t, "top", r.ErrorCode, kerr.CoordinatorNotAvailable.Code)
	if len(r.Topics) != 0 {
		t.Fatal("partitions with a top-level error")
	}
}

func TestDescribeAndList(t *testing.T) {
	h := newHarness(t)
	ids, _ := h.stableGroup("stable", 2)
	h.do(commitReq("solo", "", -1, map[string]int64{"t1/0": 1}))
	h.join("preparing")

	d := h.describe("stable")
	if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 2 ||
		d.Members[0].MemberID != ids[0] || string(d.Members[0].ProtocolMetadata) != string(subscription("t1")) ||
		string(d.Members[1].MemberAssignment) != "assignment-of-"+ids[1] {
		t.Fatalf("describe stable %+v", d)
	}
	if d.AuthorizedOperations != -2147483648 {
		t.Fatalf("authorized operations %d without asking", d.AuthorizedOperations)
	}
	d = h.describe("preparing")
	if d.State != "PreparingRebalance" || d.Protocol != "" || len(d.Members) != 1 || len(d.Members[0].ProtocolMetadata) != 0 {
		t.Fatalf("describe preparing %+v", d)
	}
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 3
	r.IncludeAuthorizedOperations = true
	r.Groups = []string{"solo", "none", ""}
	h.c.Unload(PartitionFor("", 50))
	gs := h.do(r).(*kmsg.DescribeGroupsResponse).Groups
	if gs[0].State != "Empty" || gs[0].ProtocolType != "" || gs[0].AuthorizedOperations != 328 {
		t.Fatalf("solo %+v", gs[0])
	}
	if gs[1].State != "Dead" || gs[1].ErrorCode != 0 {
		t.Fatalf("unknown %+v", gs[1])
	}
	if gs[2].ErrorCode != kerr.NotCoordinator.Code || gs[2].State != "" {
		t.Fatalf("not owned %+v", gs[2])
	}

	f := func(states, types []string, want ...string) {
		t.Helper()
		lr := kmsg.NewPtrListGroupsRequest()
		lr.Version = 5
		lr.StatesFilter, lr.TypesFilter = states, types
		resp := h.do(lr).(*kmsg.ListGroupsResponse)
		var got []string
		for _, g := range resp.Groups {
			got = append(got, g.Group+":"+g.GroupState+":"+g.GroupType)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("list %v %v: %v, want %v", states, types, got, want)
		}
	}
	all := []string{"preparing:PreparingRebalance:classic", "solo:Empty:classic", "stable:Stable:classic"}
	f(nil, nil, all...)
	f([]string{"stable", "EMPTY"}, nil, "solo:Empty:classic", "stable:Stable:classic")
	f([]string{"Dead"}, nil)
	f(nil, []string{"Classic"}, all...)
	f(nil, []string{"consumer"})
}

func TestOffsetExpiry(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.OffsetsRetention = time.Hour
		c.RetentionCheckInterval = 10 * time.Minute // checks at T+10m, T+20m, ...
	})
	// Standalone offsets expire an hour after their commit.
	h.do(commitReq("solo", "", -1, map[string]int64{"t1/0": 1}))
	h.clock.Advance(30 * time.Minute)
	h.do(commitReq("solo", "", -1, map[string]int64{"t1/1": 1}))

	// A group that will empty: its offsets count from when it became Empty
	// (or their commit, if later).
	lids, lgen := h.stableGroup("left", 1)
	h.do(commitReq("left", lids[0], lgen, map[string]int64{"t1/0": 1}))
	// A Stable consumer group: subscribed offsets (t1) stay, others expire.
	ids, gen := h.stableGroup("live", 1)
	h.do(commitReq("live", ids[0], gen, map[string]int64{"t1/0": 1, "t2/0": 2}))
	wantCode(t, "left heartbeat", h.heartbeat("left", lids[0], lgen), 0)
	leftAlive := true
	step := func(until time.Duration) { // to T+until, keeping the members alive
		for h.clock.Now().Sub(time.Unix(1_700_000_000, 0)) < until {
			h.clock.Advance(5 * time.Second)
			wantCode(t, "live heartbeat", h.heartbeat("live", ids[0], gen), 0)
			if leftAlive {
				wantCode(t, "left heartbeat", h.heartbeat("left", lids[0], lgen), 0)
			}
		}
	}
	step(50 * time.Minute)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = "left"
	lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: lids[0]}}
	wantCode(t, "leave", h.do(lr).(*kmsg.LeaveGroupResponse).Members[0].ErrorCode, 0)
	leftAlive = false // left is Empty from T+50m

	step(62 * time.Minute)
	if got := h.fetch("solo"); len(got) != 1 || got["t1/1"] != 1 {
		t.Fatalf("solo at T+62m: %v", got)
	}
	if got := h.fetch("live"); len(got) != 2 {
		t.Fatalf("live at T+62m: %v", got)
	}
	step(105 * time.Minute)
	if got := h.fetch("live"); len(got) != 1 || got["t1/0"] != 1 {
		t.Fatalf("live at T+105m: the unsubscribed offset should be gone: %v", got)
	}
	if h.state("left") != "Empty" || h.state("solo") != "Dead" {
		t.Fatalf("at T+105m: left %s solo %s", h.state("left"), h.state("solo"))
	}
	step(125 * time.Minute) // left has been Empty for over an hour
	if h.state("left") != "Dead" {
		t.Fatalf("left %s", h.state("left"))
	}
	if _, gone := h.tombstones("left"); !gone {
		t.Fatal("no group tombstone")
	}
	if offs, gone := h.tombstones("solo"); len(offs) != 2 || gone {
		t.Fatalf("solo tombstones %v %v", offs, gone)
	}
}

func TestOffsetExpiryRespectsLaterCommitToEmptyGroup(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OffsetsRetention = time.Hour })
	ids, gen := h.stableGroup("g", 1)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = "g"
	lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: ids[0]}}
	h.do(lr)
	_ = gen
	h.clock.Advance(2 * time.Hour) // long Empty (and dead by now: no offsets)
	h.do(commitReq("g", "", -1, map[string]int64{"t1/0": 5}))
	h.clock.Advance(20 * time.Minute)
	if h.fetch("g")["t1/0"] != 5 {
		t.Fatal("a fresh commit expired")
	}
}

func TestOffsetExpiryExplicitRetention(t *testing.T) {
	h := newHarness(t)
	r := commitReq("g", "", -1, map[string]int64{"t1/0": 1})
	r.Version = 2
	r.RetentionTimeMillis = (15 * time.Minute).Milliseconds()
	h.do(r)
	h.clock.Advance(10 * time.Minute)
	if len(h.fetch("g")) != 1 {
		t.Fatal("expired early")
	}
	h.clock.Advance(10 * time.Minute)
	if len(h.fetch("g")) != 0 {
		t.Fatal("explicit retention ignored")
	}
}

func TestPendingCommitNotExpired(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OffsetsRetention = time.Minute })
	h.do(commitReq("g", "", -1, map[string]int64{"t1/0": 1}))
	h.log.setHold(true)
	c := h.send(commitReq("g", "", -1, map[string]int64{"t1/0": 2}))
	h.clock.Advance(10 * time.Minute)
	h.log.setHold(false)
	h.log.release(nil)
	c.get()
	if h.fetch("g")["t1/0"] != 2 {
		t.Fatal("commit lost")
	}
}
