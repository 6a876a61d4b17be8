package group

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// staticGroup forms a Stable group of static members "i-0", "i-1", ...
func (h *harness) staticGroup(group string, n int, opts ...joinOpt) ([]string, int32) {
	h.t.Helper()
	calls := make([]*call, n)
	for i := range calls {
		calls[i] = h.join(group, append([]joinOpt{withInstance("i-" + itoa(int32(i)))}, opts...)...)
	}
	for i := 0; i < 60 && !calls[0].answered(); i++ {
		h.clock.Advance(time.Second)
	}
	ids := make([]string, n)
	var gen int32
	for i, c := range calls {
		r := joinResp(h.t, c)
		ids[i], gen = r.MemberID, r.Generation
		if !strings.HasPrefix(r.MemberID, "i-"+itoa(int32(i))+"-") {
			h.t.Fatalf("static member id %q is not instanceId-uuid", r.MemberID)
		}
	}
	assign := map[string][]byte{}
	for _, id := range ids {
		assign[id] = []byte("for-" + id[:3])
	}
	for i := n - 1; i >= 0; i-- {
		var a map[string][]byte
		if i == 0 {
			a = assign
		}
		r := kmsg.NewPtrSyncGroupRequest()
		*r = *syncReq(group, ids[i], gen, a)
		inst := "i-" + itoa(int32(i))
		r.InstanceID = &inst
		h.send(r)
	}
	if st := h.state(group); st != "Stable" {
		h.t.Fatalf("state %s", st)
	}
	return ids, gen
}

func TestStaticRejoinWithoutRebalance(t *testing.T) {
	f := func(version int16, who int) {
		t.Helper()
		h := newHarness(t)
		ids, gen := h.staticGroup("g", 2)
		before := len(h.log.records(PartitionFor("g", 50)))

		// Instance i-<who> restarts: it rejoins without its member id.
		inst := "i-" + itoa(int32(who))
		c := h.send(joinReq("g", "", withInstance(inst), withVersion(version)))
		r := joinResp(t, c)
		if r.MemberID == ids[who] || r.Generation != gen || h.state("g") != "Stable" {
			t.Fatalf("v%d: id %s gen %d state %s", version, r.MemberID, r.Generation, h.state("g"))
		}
		switch {
		case who == 0 && version >= 9: // KIP-814: the leader is told it leads, and to skip assigning
			if r.LeaderID != r.MemberID || !r.SkipAssignment || len(r.Members) != 2 {
				t.Fatalf("v%d leader: %+v", version, r)
			}
		case who == 0: // the old leader id, so a restarted leader does not assign
			if r.LeaderID != ids[0] || r.SkipAssignment || len(r.Members) != 0 {
				t.Fatalf("v%d leader: %+v", version, r)
			}
		default:
			if r.LeaderID != ids[0] || r.SkipAssignment || len(r.Members) != 0 {
				t.Fatalf("v%d follower: %+v", version, r)
			}
		}
		// The old id is fenced; the new one works and keeps the assignment.
		wantCode(t, "old id", h.heartbeat("g", ids[who], gen, inst), kerr.FencedInstanceID.Code)
		wantCode(t, "new id", h.heartbeat("g", r.MemberID, gen, inst), 0)
		sr := kmsg.NewPtrSyncGroupRequest()
		*sr = *syncReq("g", r.MemberID, gen, nil)
		sr.InstanceID = &inst
		s := h.do(sr).(*kmsg.SyncGroupResponse)
		if s.ErrorCode != 0 || string(s.MemberAssignment) != "for-"+inst {
			t.Fatalf("sync: %s %q", errName(s.ErrorCode), s.MemberAssignment)
		}
		// The replacement was persisted.
		recs := h.log.records(PartitionFor("g", 50))
		if len(recs) != before+1 {
			t.Fatalf("%d new records", len(recs)-before)
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(recs[len(recs)-1].Value); err != nil || v.Members[who].MemberID != r.MemberID {
			t.Fatalf("record %+v (%v)", v, err)
		}
	}
	f(5, 0)
	f(5, 1)
	f(9, 0)
	f(9, 1)
}

func TestStaticFencing(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.staticGroup("g", 2)
	inst := "i-1"
	bogus := "i-9"
	c := h.send(joinReq("g", "", withInstance(inst)))
	newID := joinResp(t, c).MemberID

	// Every API refuses the old incarnation.
	wantCode(t, "heartbeat", h.heartbeat("g", ids[1], gen, inst), kerr.FencedInstanceID.Code)
	wantCode(t, "heartbeat unknown instance", h.heartbeat("g", ids[1], gen, bogus), kerr.UnknownMemberID.Code)
	jr := h.do(joinReq("g", ids[1], withInstance(inst))).(*kmsg.JoinGroupResponse)
	wantCode(t, "join", jr.ErrorCode, kerr.FencedInstanceID.Code)
	sr := kmsg.NewPtrSyncGroupRequest()
	*sr = *syncReq("g", ids[1], gen, nil)
	sr.InstanceID = &inst
	wantCode(t, "sync", h.do(sr).(*kmsg.SyncGroupResponse).ErrorCode, kerr.FencedInstanceID.Code)
	cr := commitReq("g", ids[1], gen, map[string]int64{"t1/0": 5})
	cr.InstanceID = &inst
	for _, code := range commitCodes(h.do(cr)) {
		wantCode(t, "commit", code, kerr.FencedInstanceID.Code)
	}
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = "g"
	lr.Members = []kmsg.LeaveGroupRequestMember{
		{MemberID: ids[1], InstanceID: &inst},
		{MemberID: "x", InstanceID: &bogus},
		{InstanceID: &bogus},
	}
	lresp := h.do(lr).(*kmsg.LeaveGroupResponse)
	wantCode(t, "leave top", lresp.ErrorCode, 0)
	wantCode(t, "leave fenced", lresp.Members[0].ErrorCode, kerr.FencedInstanceID.Code)
	wantCode(t, "leave unknown", lresp.Members[1].ErrorCode, kerr.UnknownMemberID.Code)
	wantCode(t, "leave unknown by instance", lresp.Members[2].ErrorCode, kerr.UnknownMemberID.Code)
	if h.state("g") != "Stable" {
		t.Fatal("refused requests changed the group")
	}

	// Administrative removal by instance id alone works and rebalances.
	lr.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}}
	lresp = h.do(lr).(*kmsg.LeaveGroupResponse)
	wantCode(t, "admin leave", lresp.Members[0].ErrorCode, 0)
	if h.state("g") != "PreparingRebalance" {
		t.Fatalf("state %s", h.state("g"))
	}
	wantCode(t, "removed", h.heartbeat("g", newID, gen, inst), kerr.UnknownMemberID.Code)
}

func TestStaticRejoinChangingProtocolRebalances(t *testing.T) {
	h := newHarness(t)
	// Both support range and rr, both prefer range.
	_, gen := h.staticGroup("g", 2, withProtocols("range", "rr"))
	// i-1 restarts preferring rr: the vote ties and range (voted first) stays,
	// so no rebalance even though its metadata changed (Kafka only compares the
	// selected protocol).
	c := h.send(joinReq("g", "", withInstance("i-1"), withProtocols("rr", "range")))
	if r := joinResp(t, c); r.Generation != gen {
		t.Fatalf("selected protocol unchanged: no rebalance expected, gen %d", r.Generation)
	}
	// i-0 now supports only rr: the selected protocol must change.
	c0 := h.send(joinReq("g", "", withInstance("i-0"), withProtocols("rr")))
	if c0.answered() {
		t.Fatalf("answered without a rebalance: %+v", c0.get())
	}
	if h.state("g") != "PreparingRebalance" {
		t.Fatalf("state %s", h.state("g"))
	}
}

func TestStaticMemberLeftOnlyBySessionTimeout(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.staticGroup("g", 2)
	// i-1 shuts down (no LeaveGroup, as static clients do); i-0 keeps heartbeating.
	for i := 0; i < 3; i++ {
		h.clock.Advance(3 * time.Second)
		wantCode(t, "heartbeat", h.heartbeat("g", ids[0], gen, "i-0"), 0)
	}
	h.clock.Advance(3 * time.Second)
	wantCode(t, "after expiry", h.heartbeat("g", ids[0], gen, "i-0"), kerr.RebalanceInProgress.Code)
}

func TestStaticReplaceDuringCompletingRebalance(t *testing.T) {
	h := newHarness(t)
	a := h.join("g", withInstance("i-0"))
	b := h.join("g", withInstance("i-1"))
	h.clock.Advance(6 * time.Second)
	joinResp(t, a)
	rb := joinResp(t, b)
	sb := kmsg.NewPtrSyncGroupRequest()
	*sb = *syncReq("g", rb.MemberID, rb.Generation, nil)
	inst := "i-1"
	sb.InstanceID = &inst
	parked := h.send(sb)
	// i-1 restarts before the leader synced: its old sync is fenced and the
	// group rebalances so the leader does not assign to a dead id.
	c := h.send(joinReq("g", "", withInstance("i-1")))
	wantCode(t, "old sync", parked.get().(*kmsg.SyncGroupResponse).ErrorCode, kerr.FencedInstanceID.Code)
	if c.answered() || h.state("g") != "PreparingRebalance" {
		t.Fatalf("state %s", h.state("g"))
	}
}

func TestLeaderThatDoesNotRejoinIsReplaced(t *testing.T) {
	// Dynamic: the silent leader is dropped and a rejoined member leads.
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 2)
	b := h.send(joinReq("g", ids[1], withSubscription("t1", "t2")))
	h.clock.Advance(30 * time.Second)
	r := joinResp(t, b)
	if r.LeaderID != ids[1] || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("%+v", r)
	}

	// Static: the silent leader stays a member (it may be restarting) but a
	// rejoined member leads, with both in its member list.
	h = newHarness(t)
	sids, sgen := h.staticGroup("s", 2)
	b = h.send(joinReq("s", sids[1], withInstance("i-1"), withSubscription("t1", "t2")))
	for i := 0; i < 6; i++ { // i-0 is alive (heartbeats) but does not rejoin
		h.clock.Advance(5 * time.Second)
		h.heartbeat("s", sids[0], sgen, "i-0")
	}
	r = joinResp(t, b)
	if r.LeaderID != sids[1] || r.Generation != sgen+1 || len(r.Members) != 2 {
		t.Fatalf("%+v", r)
	}
}

func TestRebalanceWaitsWhileOnlyStaticMembersAreMissing(t *testing.T) {
	h := newHarness(t)
	sids, sgen := h.staticGroup("s", 2)
	// A dynamic member joins and leaves again: the static members were asked
	// to rejoin, but none does within the rebalance timeout.
	d := h.send(joinReq("s", "", withVersion(3)))
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = "s"
	// The dynamic member's id is only in its (parked) join; find it via describe.
	for _, m := range h.describe("s").Members {
		if m.InstanceID == nil {
			lr.Members = append(lr.Members, kmsg.LeaveGroupRequestMember{MemberID: m.MemberID})
		}
	}
	h.do(lr)
	wantCode(t, "dynamic join", d.get().(*kmsg.JoinGroupResponse).ErrorCode, kerr.UnknownMemberID.Code)
	// They stay alive (heartbeats) but ignore the rebalance.
	for i := 0; i < 6; i++ {
		h.clock.Advance(5 * time.Second)
		wantCode(t, "i-0", h.heartbeat("s", sids[0], sgen, "i-0"), kerr.RebalanceInProgress.Code)
		wantCode(t, "i-1", h.heartbeat("s", sids[1], sgen, "i-1"), kerr.RebalanceInProgress.Code)
	}
	if st := h.state("s"); st != "PreparingRebalance" {
		t.Fatalf("with nobody rejoined the group must keep waiting: %s", st)
	}
	// i-0 comes back; the next timeout completes the rebalance with it leading.
	a := h.send(joinReq("s", sids[0], withInstance("i-0")))
	for i := 0; i < 6 && !a.answered(); i++ {
		h.clock.Advance(5 * time.Second)
		h.heartbeat("s", sids[1], sgen, "i-1")
	}
	r := joinResp(t, a)
	if r.Generation != sgen+1 || r.LeaderID != sids[0] || len(r.Members) != 2 {
		t.Fatalf("%+v", r)
	}
}
