package group

import (
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSingleMemberJoinSync(t *testing.T) {
	h := newHarness(t)
	first := h.send(joinReq("g", ""))
	r := first.get().(*kmsg.JoinGroupResponse)
	wantCode(t, "first join", r.ErrorCode, kerr.MemberIDRequired.Code)
	if !regexp.MustCompile(`^client-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(r.MemberID) {
		t.Fatalf("member id %q is not clientId-uuid", r.MemberID)
	}
	if r.Generation != -1 || r.LeaderID != "" || r.Protocol != nil {
		t.Fatalf("error response carries gen %d leader %q protocol %v", r.Generation, r.LeaderID, r.Protocol)
	}
	id := r.MemberID
	if st := h.state("g"); st != "Empty" {
		t.Fatalf("a pending member does not join: state %s", st)
	}

	second := h.send(joinReq("g", id))
	if second.answered() {
		t.Fatal("join answered before the initial rebalance delay")
	}
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	h.clock.Advance(2999 * time.Millisecond)
	if second.answered() {
		t.Fatal("join answered before the initial rebalance delay")
	}
	h.clock.Advance(time.Millisecond)
	jr := joinResp(t, second)
	if jr.Generation != 1 || jr.LeaderID != id || jr.MemberID != id || *jr.Protocol != "range" || *jr.ProtocolType != "consumer" {
		t.Fatalf("join response %+v", jr)
	}
	if len(jr.Members) != 1 || jr.Members[0].MemberID != id || string(jr.Members[0].ProtocolMetadata) != string(subscription("t1")) {
		t.Fatalf("leader members %+v", jr.Members)
	}
	if st := h.state("g"); st != "CompletingRebalance" {
		t.Fatalf("state %s", st)
	}
	wantCode(t, "heartbeat while completing", h.heartbeat("g", id, 1), 0)

	sr := h.do(syncReq("g", id, 1, map[string][]byte{id: []byte("a")})).(*kmsg.SyncGroupResponse)
	wantCode(t, "sync", sr.ErrorCode, 0)
	if string(sr.MemberAssignment) != "a" || *sr.Protocol != "range" || *sr.ProtocolType != "consumer" {
		t.Fatalf("sync response %+v", sr)
	}
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("state %s", st)
	}
	d := h.describe("g")
	if d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "a" ||
		d.Members[0].ClientID != "client" || d.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe %+v", d)
	}
	recs := h.log.records(PartitionFor("g", 50))
	if len(recs) != 1 {
		t.Fatalf("%d records, want the group metadata", len(recs))
	}
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(recs[0].Value); err != nil || v.Version != 3 || v.Generation != 1 || len(v.Members) != 1 ||
		string(v.Members[0].Assignment) != "a" || *v.Leader != id {
		t.Fatalf("group record %+v (%v)", v, err)
	}
}

func TestThreeMembersInitialDelayExtends(t *testing.T) {
	h := newHarness(t)
	a := h.join("g")
	h.clock.Advance(time.Second)
	b := h.join("g")
	h.clock.Advance(3 * time.Second) // t=4: the first delay (t=3) saw b and extended to t=6
	c := h.join("g")
	h.clock.Advance(4*time.Second + 999*time.Millisecond) // t=8.999: extended again at t=6 to t=9
	if a.answered() || b.answered() || c.answered() {
		t.Fatal("answered before the extended delay")
	}
	h.clock.Advance(time.Millisecond)
	ra, rb, rc := joinResp(t, a), joinResp(t, b), joinResp(t, c)
	if ra.LeaderID != ra.MemberID || rb.LeaderID != ra.MemberID || len(ra.Members) != 3 || len(rb.Members) != 0 || len(rc.Members) != 0 {
		t.Fatalf("leader %s members %d/%d/%d", ra.LeaderID, len(ra.Members), len(rb.Members), len(rc.Members))
	}
	for _, r := range []*kmsg.JoinGroupResponse{ra, rb, rc} {
		if r.Generation != 1 {
			t.Fatalf("generation %d", r.Generation)
		}
	}
	// Followers wait for the leader's assignment.
	sb := h.send(syncReq("g", rb.MemberID, 1, nil))
	sc := h.send(syncReq("g", rc.MemberID, 1, nil))
	if sb.answered() || sc.answered() {
		t.Fatal("follower sync answered before the leader's")
	}
	sa := h.send(syncReq("g", ra.MemberID, 1, map[string][]byte{ra.MemberID: []byte("A"), rb.MemberID: []byte("B")}))
	for _, x := range []struct {
		c    *call
		want string
	}{{sa, "A"}, {sb, "B"}, {sc, ""}} { // c was left out: empty assignment
		r := x.c.get().(*kmsg.SyncGroupResponse)
		if r.ErrorCode != 0 || string(r.MemberAssignment) != x.want {
			t.Fatalf("sync: %s %q, want %q", errName(r.ErrorCode), r.MemberAssignment, x.want)
		}
	}
}

func TestInitialDelayCappedByRebalanceTimeout(t *testing.T) {
	h := newHarness(t)
	a := h.join("g", withTimeouts(10*time.Second, 7*time.Second))
	// Keep members arriving: the delay may only stretch to the rebalance timeout (7s).
	var others []*call
	for i := 0; i < 6; i++ {
		h.clock.Advance(time.Second)
		others = append(others, h.join("g", withTimeouts(10*time.Second, 7*time.Second)))
	}
	if a.answered() {
		t.Fatal("answered too early")
	}
	h.clock.Advance(time.Second) // t=7
	if !a.answered() {
		t.Fatal("initial delay outlived the rebalance timeout")
	}
	if r := joinResp(t, a); len(r.Members) != 7 {
		t.Fatalf("%d members", len(r.Members))
	}
}

func TestMemberIDRequiredExpires(t *testing.T) {
	h := newHarness(t)
	r := h.do(joinReq("g", "")).(*kmsg.JoinGroupResponse)
	wantCode(t, "join", r.ErrorCode, kerr.MemberIDRequired.Code)
	h.clock.Advance(10 * time.Second) // the session timeout of the request
	r2 := h.do(joinReq("g", r.MemberID)).(*kmsg.JoinGroupResponse)
	wantCode(t, "late rejoin", r2.ErrorCode, kerr.UnknownMemberID.Code)
	if d := h.describe("g"); d.State != "Dead" {
		t.Fatalf("group left behind: %s", d.State)
	}
}

func TestPendingMemberBlocksRebalance(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 1)
	// A new member got its id but has not rejoined: the rebalance waits for it
	// (Kafka's hasAllMembersJoined) until its session expires.
	r := h.do(joinReq("g", "")).(*kmsg.JoinGroupResponse)
	wantCode(t, "join", r.ErrorCode, kerr.MemberIDRequired.Code)
	lead := h.send(joinReq("g", ids[0])) // leader rejoin forces a rebalance
	if lead.answered() {
		t.Fatal("rebalance completed while a member id was outstanding")
	}
	h.clock.Advance(10 * time.Second)
	if jr := joinResp(t, lead); jr.Generation != gen+1 || len(jr.Members) != 1 {
		t.Fatalf("gen %d members %d", jr.Generation, len(jr.Members))
	}
}

func TestOldVersionsJoinDirectly(t *testing.T) {
	f := func(version int16) {
		t.Helper()
		h := newHarness(t)
		req := joinReq("g", "", withVersion(version))
		req.RebalanceTimeoutMillis = -1 // v0 has none: the session timeout (10s) is used
		c := h.send(req)
		h.clock.Advance(3 * time.Second)
		r := joinResp(t, c)
		if r.MemberID == "" || r.Generation != 1 {
			t.Fatalf("v%d: %+v", version, r)
		}
	}
	f(0)
	f(3)
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxSize = 2 })
	f := func(req *kmsg.JoinGroupRequest, want int16) {
		t.Helper()
		r := h.do(req).(*kmsg.JoinGroupResponse)
		wantCode(t, "join", r.ErrorCode, want)
		if r.Generation != -1 {
			t.Fatalf("error response with generation %d", r.Generation)
		}
	}
	f(joinReq("", ""), kerr.InvalidGroupID.Code)
	f(joinReq("g", "", withTimeouts(5999*time.Millisecond, time.Minute)), kerr.InvalidSessionTimeout.Code)
	f(joinReq("g", "", withTimeouts(30*time.Minute+time.Millisecond, time.Minute)), kerr.InvalidSessionTimeout.Code)
	f(joinReq("g", "nobody"), kerr.UnknownMemberID.Code)
	f(joinReq("g", "", withProtocols()), kerr.InconsistentGroupProtocol.Code)
	noType := joinReq("g", "")
	noType.ProtocolType = ""
	f(noType, kerr.InconsistentGroupProtocol.Code)
	if d := h.describe("g"); d.State != "Dead" {
		t.Fatalf("rejected joins left a group behind: %s", d.State)
	}

	h.stableGroup("one", 1)
	other := joinReq("one", "")
	other.ProtocolType = "connect"
	f(other, kerr.InconsistentGroupProtocol.Code)
	f(joinReq("one", "", withProtocols("roundrobin")), kerr.InconsistentGroupProtocol.Code)

	ids, _ := h.stableGroup("g", 2)
	// The size limit is checked first (Kafka's acceptJoiningMember).
	f(joinReq("g", "", withProtocols("roundrobin")), kerr.GroupMaxSizeReached.Code)
	f(joinReq("g", "", withVersion(3)), kerr.GroupMaxSizeReached.Code)
	// Members already in are always accepted.
	c := h.send(joinReq("g", ids[1], withSubscription("t2")))
	if c.answered() {
		t.Fatalf("member rejoin answered at once: %+v", c.get())
	}
}

func TestProtocolSelectionByVotes(t *testing.T) {
	f := func(want string, members ...[]string) {
		t.Helper()
		h := newHarness(t)
		calls := make([]*call, len(members))
		for i, ps := range members {
			calls[i] = h.join("g", withProtocols(ps...))
		}
		h.clock.Advance(time.Minute)
		for _, c := range calls {
			if r := joinResp(t, c); *r.Protocol != want {
				t.Fatalf("protocol %s, want %s", *r.Protocol, want)
			}
		}
	}
	f("x", []string{"x", "y"}, []string{"y", "x"}, []string{"x", "y"})
	f("y", []string{"x", "y"}, []string{"y", "x"}, []string{"y"})           // x is not supported by all
	f("b", []string{"a", "b"}, []string{"b", "a"}, []string{"b", "c", "a"}) // 2 votes for b
}

func TestRebalanceOnJoinLeaveAndExpiry(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 2)

	// A third member joins: the others learn it from heartbeats and rejoin.
	c := h.join("g")
	wantCode(t, "heartbeat", h.heartbeat("g", ids[0], gen), kerr.RebalanceInProgress.Code)
	a := h.send(joinReq("g", ids[0]))
	if a.answered() || c.answered() {
		t.Fatal("rebalance completed before every member rejoined")
	}
	b := h.send(joinReq("g", ids[1]))
	ra, rc := joinResp(t, a), joinResp(t, c)
	joinResp(t, b)
	if ra.Generation != gen+1 || len(ra.Members) != 3 || ra.LeaderID != ids[0] || len(rc.Members) != 0 {
		t.Fatalf("gen %d members %d leader %s", ra.Generation, len(ra.Members), ra.LeaderID)
	}
	gen = ra.Generation
	h.do(syncReq("g", ids[0], gen, nil))
	wantCode(t, "heartbeat", h.heartbeat("g", ids[1], gen), 0)

	// The leader leaves: the remaining members rebalance without it and one of them leads.
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = "g"
	lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: ids[0]}}
	resp := h.do(lr).(*kmsg.LeaveGroupResponse)
	wantCode(t, "leave", resp.Members[0].ErrorCode, 0)
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	b = h.send(joinReq("g", ids[1]))
	c = h.send(joinReq("g", rc.MemberID))
	rb := joinResp(t, b)
	if rb.Generation != gen+1 || rb.LeaderID == ids[0] || len(rb.Members)+len(joinResp(t, c).Members) != 2 {
		t.Fatalf("after leave: gen %d leader %s", rb.Generation, rb.LeaderID)
	}
	gen = rb.Generation
	h.do(syncReq("g", rb.LeaderID, gen, nil))

	// rc stops heartbeating; ids[1] keeps going. After the session timeout rc is gone.
	for i := 0; i < 4; i++ {
		h.clock.Advance(3 * time.Second)
		if code := h.heartbeat("g", ids[1], gen); code != 0 {
			wantCode(t, "heartbeat", code, kerr.RebalanceInProgress.Code)
			break
		}
	}
	wantCode(t, "expired member heartbeat", h.heartbeat("g", rc.MemberID, gen), kerr.UnknownMemberID.Code)
	b = h.send(joinReq("g", ids[1]))
	if rb := joinResp(t, b); rb.Generation != gen+1 || len(rb.Members) != 1 {
		t.Fatalf("after expiry: gen %d members %d", rb.Generation, len(rb.Members))
	}
}

func TestRebalanceTimeoutRemovesSlowMembers(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 2)
	a := h.send(joinReq("g", ids[0])) // the leader asks for a rebalance
	// ids[1] keeps heartbeating but never rejoins.
	for i := 0; i < 9; i++ {
		h.clock.Advance(3 * time.Second)
		wantCode(t, "heartbeat", h.heartbeat("g", ids[1], gen), kerr.RebalanceInProgress.Code)
	}
	if a.answered() {
		t.Fatal("completed before the rebalance timeout")
	}
	h.clock.Advance(3 * time.Second) // 30s: the largest rebalance timeout
	r := joinResp(t, a)
	if r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("gen %d members %d", r.Generation, len(r.Members))
	}
	wantCode(t, "removed member", h.heartbeat("g", ids[1], gen), kerr.UnknownMemberID.Code)
}

func TestPendingSyncTimeout(t *testing.T) {
	h := newHarness(t)
	a, b := h.join("g"), h.join("g")
	h.clock.Advance(6 * time.Second) // b arrived during the first delay: extended once
	ra, rb := joinResp(t, a), joinResp(t, b)
	// The follower syncs, the leader never does: after the rebalance timeout the
	// leader is removed and the follower told to rejoin.
	sb := h.send(syncReq("g", rb.MemberID, rb.Generation, nil))
	for i := 0; i < 10; i++ {
		h.clock.Advance(3 * time.Second)
		if code := h.heartbeat("g", ra.MemberID, ra.Generation); code != 0 {
			break
		}
	}
	r := sb.get().(*kmsg.SyncGroupResponse)
	wantCode(t, "follower sync", r.ErrorCode, kerr.RebalanceInProgress.Code)
	wantCode(t, "leader heartbeat", h.heartbeat("g", ra.MemberID, ra.Generation), kerr.UnknownMemberID.Code)
}

func TestLastMemberLeavesGroupEmpty(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 1)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 1
	lr.Group, lr.MemberID = "g", ids[0]
	wantCode(t, "leave", h.do(lr).(*kmsg.LeaveGroupResponse).ErrorCode, 0)
	if st := h.state("g"); st != "Empty" {
		t.Fatalf("state %s", st)
	}
	recs := h.log.records(PartitionFor("g", 50))
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(recs[len(recs)-1].Value); err != nil || v.Generation != gen+1 || len(v.Members) != 0 || v.Protocol != nil {
		t.Fatalf("empty group record %+v (%v)", v, err)
	}
	// v0-v2 report the member's error at the top level.
	wantCode(t, "leave again", h.do(lr).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.UnknownMemberID.Code)
}

func TestCompletingRebalanceRetryJoin(t *testing.T) {
	h := newHarness(t)
	a, b := h.join("g"), h.join("g")
	h.clock.Advance(6 * time.Second) // b arrived during the first delay: extended once
	ra, rb := joinResp(t, a), joinResp(t, b)
	// A lost JoinGroup response: the same join again gets the same generation.
	again := joinResp(t, h.send(joinReq("g", ra.MemberID)))
	if again.Generation != ra.Generation || len(again.Members) != 2 {
		t.Fatalf("retry: gen %d members %d", again.Generation, len(again.Members))
	}
	// Changed metadata forces a new rebalance; the parked follower sync is told so.
	sb := h.send(syncReq("g", rb.MemberID, rb.Generation, nil))
	h.send(joinReq("g", ra.MemberID, withSubscription("t1", "t2")))
	wantCode(t, "follower sync", sb.get().(*kmsg.SyncGroupResponse).ErrorCode, kerr.RebalanceInProgress.Code)
}

func TestStableFollowerRejoinNoRebalance(t *testing.T) {
	h := newHarness(t)
	ids, gen := h.stableGroup("g", 2)
	r := joinResp(t, h.send(joinReq("g", ids[1])))
	if r.Generation != gen || len(r.Members) != 0 || r.LeaderID != ids[0] {
		t.Fatalf("%+v", r)
	}
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("state %s", st)
	}
}

func TestJoinResponseVersions(t *testing.T) {
	f := func(version int16, wantProtocolNil bool) {
		t.Helper()
		h := newHarness(t)
		r := h.do(joinReq("", "", withVersion(version))).(*kmsg.JoinGroupResponse)
		if r.Version != version {
			t.Fatalf("version %d", r.Version)
		}
		if (r.Protocol == nil) != wantProtocolNil {
			t.Fatalf("v%d protocol %v", version, r.Protocol)
		}
		// The encoder writes what each version has: nil becomes "" before v7.
		b := r.AppendTo(nil)
		back := kmsg.NewPtrJoinGroupResponse()
		back.Version = version
		if err := back.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
	}
	f(6, true)
	f(7, true)
	f(9, true)
}
