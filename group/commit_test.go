package group

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCommitRulesByState(t *testing.T) {
	h := newHarness(t)
	f := func(what string, req *kmsg.OffsetCommitRequest, want int16) {
		t.Helper()
		for tp, code := range commitCodes(h.do(req)) {
			wantCode(t, what+" "+tp, code, want)
		}
	}
	// Standalone commits: allowed for a new or Empty group.
	f("standalone new group", commitReq("solo", "", -1, map[string]int64{"t1/0": 1}), 0)
	f("standalone again", commitReq("solo", "", -1, map[string]int64{"t1/0": 2}), 0)
	if got := h.fetch("solo"); got["t1/0"] != 2 {
		t.Fatalf("fetch %v", got)
	}
	f("member of unknown group", commitReq("nogroup", "m", 3, map[string]int64{"t1/0": 1}), kerr.IllegalGeneration.Code)
	f("member id without generation", commitReq("nogroup", "m", -1, map[string]int64{"t1/0": 1}), kerr.UnknownMemberID.Code)
	if d := h.describe("nogroup"); d.State != "Dead" {
		t.Fatalf("a refused commit created group: %s", d.State)
	}

	ids, gen := h.stableGroup("g", 2)
	f("standalone to live group", commitReq("g", "", -1, map[string]int64{"t1/0": 1}), kerr.UnknownMemberID.Code)
	f("unknown member", commitReq("g", "nobody", gen, map[string]int64{"t1/0": 1}), kerr.UnknownMemberID.Code)
	f("stale generation", commitReq("g", ids[1], gen-1, map[string]int64{"t1/0": 1}), kerr.IllegalGeneration.Code)
	f("stable", commitReq("g", ids[1], gen, map[string]int64{"t1/0": 10}), 0)

	// PreparingRebalance: the current generation may still commit (cooperative revocation).
	lead := h.send(joinReq("g", ids[0]))
	f("preparing", commitReq("g", ids[1], gen, map[string]int64{"t1/1": 11}), 0)
	h.send(joinReq("g", ids[1]))
	joinResp(t, lead)
	// CompletingRebalance: members must wait for their assignment.
	f("completing", commitReq("g", ids[1], gen+1, map[string]int64{"t1/2": 12}), kerr.RebalanceInProgress.Code)
	f("completing, old generation", commitReq("g", ids[1], gen, map[string]int64{"t1/2": 12}), kerr.IllegalGeneration.Code)
	h.do(syncReq("g", ids[0], gen+1, nil))
	f("stable again", commitReq("g", ids[1], gen+1, map[string]int64{"t1/2": 12}), 0)

	got := h.fetch("g")
	if got["t1/0"] != 10 || got["t1/1"] != 11 || got["t1/2"] != 12 || len(got) != 3 {
		t.Fatalf("fetch %v", got)
	}
}

func TestCommitPartitionErrors(t *testing.T) {
	h := newHarness(t)
	req := commitReq("g", "", -1, map[string]int64{"t1/0": 1, "t1/1": 2, "nope/0": 3, "t1/7": 4, "t2/0": 5})
	big := strings.Repeat("é", 4096)        // 4096 UTF-16 units, 8192 bytes: fits
	huge := strings.Repeat("😀", 2048) + "x" // 4097 UTF-16 units: too large
	// commitReq makes one topic entry per partition.
	for i := range req.Topics {
		p := &req.Topics[i].Partitions[0]
		switch {
		case req.Topics[i].Topic == "t1" && p.Partition == 0:
			p.Metadata = &big
		case req.Topics[i].Topic == "t1" && p.Partition == 1:
			p.Metadata = &huge
		}
	}
	got := commitCodes(h.do(req))
	want := map[string]int16{
		"t1/0":   0,
		"t1/1":   kerr.OffsetMetadataTooLarge.Code,
		"nope/0": kerr.UnknownTopicOrPartition.Code,
		"t1/7":   kerr.UnknownTopicOrPartition.Code,
		"t2/0":   0,
	}
	for k, w := range want {
		wantCode(t, k, got[k], w)
	}
	off := h.fetch("g")
	if len(off) != 2 || off["t1/0"] != 1 || off["t2/0"] != 5 {
		t.Fatalf("fetch %v", off)
	}

	// Only unknown topics: the coordinator is not consulted (NOT_COORDINATOR would not show).
	h.c.Unload(PartitionFor("x", 50))
	codes := commitCodes(h.do(commitReq("x", "", -1, map[string]int64{"nope/0": 1})))
	wantCode(t, "unknown topic only", codes["nope/0"], kerr.UnknownTopicOrPartition.Code)
	codes = commitCodes(h.do(commitReq("x", "", -1, map[string]int64{"nope/0": 1, "t1/0": 1})))
	wantCode(t, "unknown topic", codes["nope/0"], kerr.UnknownTopicOrPartition.Code)
	wantCode(t, "not coordinator", codes["t1/0"], kerr.NotCoordinator.Code)
}

func TestCommitVisibleOnlyWhenDurable(t *testing.T) {
	h := newHarness(t)
	h.do(commitReq("g", "", -1, map[string]int64{"t1/0": 1}))
	h.log.setHold(true)
	c := h.send(commitReq("g", "", -1, map[string]int64{"t1/0": 2}))
	if c.answered() {
		t.Fatal("commit answered before durable")
	}
	if got := h.fetch("g"); got["t1/0"] != 1 {
		t.Fatalf("pending commit visible: %v", got)
	}
	// RequireStable: the client is told to wait rather than read a stale offset.
	fr := kmsg.NewPtrOffsetFetchRequest()
	fr.Version = 7
	fr.Group = "g"
	fr.RequireStable = true
	fr.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t1", Partitions: []int32{0, 1}}}
	resp := h.do(fr).(*kmsg.OffsetFetchResponse)
	wantCode(t, "unstable", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnstableOffsetCommit.Code)
	wantCode(t, "other partition", resp.Topics[0].Partitions[1].ErrorCode, 0)

	h.log.release(nil)
	for _, code := range commitCodes(c.get()) {
		wantCode(t, "commit", code, 0)
	}
	if got := h.fetch("g"); got["t1/0"] != 2 {
		t.Fatalf("durable commit not visible: %v", got)
	}
}

func TestCommitAppendFailure(t *testing.T) {
	f := func(err error, want int16) {
		t.Helper()
		h := newHarness(t)
		h.do(commitReq("g", "", -1, map[string]int64{"t1/0": 1}))
		h.log.setFail(err)
		for _, code := range commitCodes(h.do(commitReq("g", "", -1, map[string]int64{"t1/0": 2, "t1/1": 2}))) {
			wantCode(t, "commit", code, want)
		}
		if got := h.fetch("g"); got["t1/0"] != 1 || len(got) != 1 {
			t.Fatalf("failed commit visible: %v", got)
		}
	}
	f(errors.New("disk on fire"), kerr.CoordinatorNotAvailable.Code)
	f(kerr.KafkaStorageError, kerr.NotCoordinator.Code)
	f(kerr.NotLeaderForPartition, kerr.NotCoordinator.Code)
	f(kerr.NotEnoughReplicas, kerr.CoordinatorNotAvailable.Code)
	f(kerr.MessageTooLarge, kerr.InvalidCommitOffsetSize.Code)
	f(kerr.RequestTimedOut, kerr.RequestTimedOut.Code)

	// A failed standalone commit to a new group leaves no group behind.
	h := newHarness(t)
	h.log.setFail(errors.New("no"))
	h.do(commitReq("new", "", -1, map[string]int64{"t1/0": 1}))
	if d := h.describe("new"); d.State != "Dead" {
		t.Fatalf("state %s", d.State)
	}
}

func TestCommitCompletionsOutOfOrder(t *testing.T) {
	h := newHarness(t)
	h.log.setHold(true)
	h.send(commitReq("g", "", -1, map[string]int64{"t1/0": 1}))
	h.send(commitReq("g", "", -1, map[string]int64{"t1/0": 2}))
	h.log.mu.Lock()
	held := h.log.held
	h.log.held = nil
	h.log.mu.Unlock()
	held[1].done(nil) // the later commit completes first
	held[0].done(nil)
	if got := h.fetch("g"); got["t1/0"] != 2 {
		t.Fatalf("an older commit overwrote a newer one: %v", got)
	}
}

func TestCommitOldVersions(t *testing.T) {
	h := newHarness(t)
	// v1: the client sets the commit timestamp; v2-v4: a retention time gives
	// an explicit expire timestamp (OffsetCommitValue v1 on disk).
	r1 := commitReq("g", "", -1, map[string]int64{"t1/0": 1})
	r1.Version = 1
	r1.Topics[0].Partitions[0].Timestamp = 12345
	h.do(r1)
	r2 := commitReq("g", "", -1, map[string]int64{"t1/1": 1})
	r2.Version = 2
	r2.RetentionTimeMillis = 60_000
	h.do(r2)
	r0 := commitReq("g", "", -1, map[string]int64{"t1/2": 1})
	r0.Version = 0
	h.do(r0)

	recs := h.log.records(PartitionFor("g", 50))
	var v1, v2 kmsg.OffsetCommitValue
	if err := v1.ReadFrom(recs[0].Value); err != nil || v1.Version != 3 || v1.CommitTimestamp != 12345 || v1.LeaderEpoch != -1 {
		t.Fatalf("v1 commit record %+v (%v)", v1, err)
	}
	now := h.clock.Now().UnixMilli()
	if err := v2.ReadFrom(recs[1].Value); err != nil || v2.Version != 1 || v2.ExpireTimestamp != now+60_000 {
		t.Fatalf("v2 commit record %+v (%v)", v2, err)
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(recs[2].Key); err != nil || k.Version != 1 || k.Group != "g" || k.Topic != "t1" || k.Partition != 2 {
		t.Fatalf("key %+v (%v)", k, err)
	}
	if len(h.fetch("g")) != 3 {
		t.Fatal("old-version commits missing")
	}
}

func TestFetchVersions(t *testing.T) {
	h := newHarness(t)
	r := commitReq("g", "", -1, map[string]int64{"t1/0": 7, "t2/3": 9})
	r.Topics[0].Partitions[0].LeaderEpoch = 4
	h.do(r)

	// v1: per-partition answers; missing is -1 with no error.
	f1 := kmsg.NewPtrOffsetFetchRequest()
	f1.Version = 1
	f1.Group = "g"
	f1.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t1", Partitions: []int32{0, 1}}}
	resp := h.do(f1).(*kmsg.OffsetFetchResponse)
	ps := resp.Topics[0].Partitions
	if ps[0].Offset != 7 || *ps[0].Metadata != "md" || ps[0].LeaderEpoch != 4 || ps[1].Offset != -1 || ps[1].ErrorCode != 0 || *ps[1].Metadata != "" {
		t.Fatalf("v1 %+v", ps)
	}
	// v1 errors go into every partition; v5 to the top level.
	h.c.Unload(PartitionFor("g", 50))
	resp = h.do(f1).(*kmsg.OffsetFetchResponse)
	wantCode(t, "v1 partition error", resp.Topics[0].Partitions[1].ErrorCode, kerr.NotCoordinator.Code)
	f5 := kmsg.NewPtrOffsetFetchRequest()
	f5.Version = 5
	f5.Group = "g"
	resp = h.do(f5).(*kmsg.OffsetFetchResponse)
	wantCode(t, "v5 top error", resp.ErrorCode, kerr.NotCoordinator.Code)
	if len(resp.Topics) != 0 {
		t.Fatal("topics with a top-level error")
	}
	if err := h.c.Load(PartitionFor("g", 50), h.log.iter(PartitionFor("g", 50))); err != nil {
		t.Fatal(err)
	}

	// v8: several groups, each with its own error; nil topics = all.
	f8 := kmsg.NewPtrOffsetFetchRequest()
	f8.Version = 8
	f8.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "g"},
		{Group: "unknown", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t1", Partitions: []int32{0}}}},
		{Group: ""},
	}
	h.c.Unload(PartitionFor("", 50))
	resp = h.do(f8).(*kmsg.OffsetFetchResponse)
	g0, g1, g2 := resp.Groups[0], resp.Groups[1], resp.Groups[2]
	if g0.ErrorCode != 0 || len(g0.Topics) != 2 || g0.Topics[0].Topic != "t1" || g0.Topics[1].Partitions[0].Offset != 9 {
		t.Fatalf("v8 all %+v", g0)
	}
	if g1.ErrorCode != 0 || g1.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("v8 unknown group %+v", g1)
	}
	wantCode(t, "v8 group error", g2.ErrorCode, kerr.NotCoordinator.Code)
}

func TestHeartbeatAndSyncErrors(t *testing.T) {
	h := newHarness(t)
	wantCode(t, "empty group id", h.heartbeat("", "m", 1), kerr.InvalidGroupID.Code)
	wantCode(t, "unknown group", h.heartbeat("nope", "m", 1), kerr.UnknownMemberID.Code)
	ids, gen := h.stableGroup("g", 2)
	wantCode(t, "unknown member", h.heartbeat("g", "m", gen), kerr.UnknownMemberID.Code)
	wantCode(t, "stale generation", h.heartbeat("g", ids[1], gen-1), kerr.IllegalGeneration.Code)
	wantCode(t, "future generation", h.heartbeat("g", ids[1], gen+1), kerr.IllegalGeneration.Code)

	f := func(what string, req *kmsg.SyncGroupRequest, want int16) {
		t.Helper()
		r := h.do(req).(*kmsg.SyncGroupResponse)
		wantCode(t, what, r.ErrorCode, want)
		if r.ProtocolType != nil || r.Protocol != nil || len(r.MemberAssignment) != 0 {
			t.Fatalf("%s: error response with data %+v", what, r)
		}
	}
	f("unknown group", syncReq("nope", "m", 1, nil), kerr.UnknownMemberID.Code)
	f("empty group id", syncReq("", "m", 1, nil), kerr.InvalidGroupID.Code)
	f("unknown member", syncReq("g", "m", gen, nil), kerr.UnknownMemberID.Code)
	f("stale generation", syncReq("g", ids[1], gen-1, nil), kerr.IllegalGeneration.Code)
	bad := syncReq("g", ids[1], gen, nil)
	other := "roundrobin"
	bad.Protocol = &other
	f("protocol mismatch", bad, kerr.InconsistentGroupProtocol.Code)
	missing := syncReq("g", ids[1], gen, nil)
	missing.ProtocolType = nil
	f("v5 without protocol type", missing, kerr.InconsistentGroupProtocol.Code)

	lead := h.send(joinReq("g", ids[0]))
	f("preparing", syncReq("g", ids[1], gen, nil), kerr.RebalanceInProgress.Code)
	_ = lead
}

func TestLeaveErrors(t *testing.T) {
	h := newHarness(t)
	f := func(version int16, group string, members []string, wantTop int16, wantMembers ...int16) {
		t.Helper()
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Version = version
		r.Group = group
		if version < 3 {
			r.MemberID = members[0]
		} else {
			for _, m := range members {
				r.Members = append(r.Members, kmsg.LeaveGroupRequestMember{MemberID: m})
			}
		}
		resp := h.do(r).(*kmsg.LeaveGroupResponse)
		wantCode(t, "top", resp.ErrorCode, wantTop)
		if len(resp.Members) != len(wantMembers) {
			t.Fatalf("%d member answers, want %d", len(resp.Members), len(wantMembers))
		}
		for i, w := range wantMembers {
			wantCode(t, "member "+members[i], resp.Members[i].ErrorCode, w)
		}
	}
	f(0, "", []string{"m"}, kerr.InvalidGroupID.Code)
	f(4, "", []string{"m"}, kerr.InvalidGroupID.Code)
	f(2, "nope", []string{"m"}, kerr.UnknownMemberID.Code)
	f(4, "nope", []string{"m", "n"}, 0, kerr.UnknownMemberID.Code, kerr.UnknownMemberID.Code)
	ids, _ := h.stableGroup("g", 3)
	f(5, "g", []string{ids[1], "zzz", ids[2]}, 0, 0, kerr.UnknownMemberID.Code, 0)
	if h.state("g") != "PreparingRebalance" {
		t.Fatal("leave did not rebalance")
	}
	h.c.Unload(PartitionFor("g", 50))
	f(5, "g", []string{ids[0]}, kerr.NotCoordinator.Code)
}

func TestCommitHeartbeatsMember(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 2)
	// ids[1] only commits (no heartbeats) and must stay; ids[0] heartbeats.
	for i := 0; i < 5; i++ {
		h.clock.Advance(3 * time.Second)
		wantCode(t, "heartbeat", h.heartbeat("g", ids[0], gen), 0)
		for _, code := range commitCodes(h.do(commitReq("g", ids[1], gen, map[string]int64{"t1/0": int64(i)}))) {
			wantCode(t, "commit", code, 0)
		}
	}
}
