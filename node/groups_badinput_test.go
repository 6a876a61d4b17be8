package node

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupBadInput: malformed group requests get Kafka's error codes over
// the wire and change nothing: the committed offset stays, the group's
// state is intact, the connection keeps working.
func TestGroupBadInput(t *testing.T) {
	n := startNode(t, "", fastGroups)
	cl := newClient(t, n)
	ctx := testCtx(t)
	if _, err := newAdmin(t, n).CreateTopic(ctx, 1, 1, nil, "b"); err != nil {
		t.Fatal(err)
	}
	commit := func(group, member string, gen int32, topic string, offset int64) int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = group, member, gen
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	join := func(member string, protocols ...string) *kmsg.JoinGroupResponse {
		t.Helper()
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = "bad", member, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		for _, p := range protocols {
			jp := kmsg.NewJoinGroupRequestProtocol()
			jp.Name, jp.Metadata = p, []byte{0, 0}
			req.Protocols = append(req.Protocols, jp)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	expect := func(what string, got int16, want *kerr.Error) {
		t.Helper()
		if got != want.Code {
			t.Errorf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
		}
	}

	// A standalone commit establishes an offset to protect.
	expect("standalone commit", commit("bad", "", -1, "b", 42), &kerr.Error{Code: 0})
	// One member joins (member id required first, KIP-394) and becomes Stable.
	r := join("", "range")
	expect("first join", r.ErrorCode, kerr.MemberIDRequired)
	r = join(r.MemberID, "range")
	expect("join", r.ErrorCode, &kerr.Error{Code: 0})
	member, gen := r.MemberID, r.Generation
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "bad", member, gen
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range") // mandatory from v5
	if sr, err := sync.RequestWith(ctx, cl); err != nil || sr.ErrorCode != 0 {
		t.Fatalf("sync: %v %v", err, sr)
	}

	// A second member with no protocol in common.
	r2 := join("", "no-such-protocol")
	if r2.ErrorCode == kerr.MemberIDRequired.Code {
		r2 = join(r2.MemberID, "no-such-protocol")
	}
	expect("join with an unknown protocol", r2.ErrorCode, kerr.InconsistentGroupProtocol)
	expect("commit by an unknown member", commit("bad", "who-1234", gen, "b", 7), kerr.UnknownMemberID)
	expect("commit with a stale generation", commit("bad", member, gen-1, "b", 7), kerr.IllegalGeneration)
	expect("commit to an unknown topic", commit("bad", member, gen, "nope", 7), kerr.UnknownTopicOrPartition)
	expect("standalone commit to a live group", commit("bad", "", -1, "b", 7), kerr.UnknownMemberID)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "bad", member, gen+5
	if hr, err := hb.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	} else {
		expect("heartbeat with a future generation", hr.ErrorCode, kerr.IllegalGeneration)
	}
	empty := kmsg.NewPtrJoinGroupRequest()
	empty.ProtocolType, empty.SessionTimeoutMillis = "consumer", 10000
	if er, err := empty.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	} else {
		expect("join with an empty group id", er.ErrorCode, kerr.InvalidGroupID)
	}

	// Nothing changed: the offset is 42, the member is still there, Stable.
	adm := newAdmin(t, n)
	offs, err := adm.FetchOffsets(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("b", 0); !ok || o.At != 42 {
		t.Fatalf("committed offset after bad requests: %+v, want 42", o)
	}
	gs, err := adm.DescribeGroups(ctx, "bad")
	if err != nil || gs["bad"].State != "Stable" || len(gs["bad"].Members) != 1 {
		t.Fatalf("group after bad requests: %+v %v", gs["bad"], err)
	}

	// Clients can neither write to nor delete the internal topic.
	pr := produceReq(9, -1, offsetsTopic, map[int32][]byte{0: encodeBatch(1, []byte("x"))})
	if presp, err := pr.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	} else {
		expect("produce to "+offsetsTopic, presp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException)
	}
	dr, err := adm.DeleteTopics(ctx, offsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if d := dr[offsetsTopic]; d.Err == nil {
		t.Fatalf("deleting %s succeeded", offsetsTopic)
	}
	if offs, err := adm.FetchOffsets(ctx, "bad"); err != nil {
		t.Fatal(err)
	} else if o, _ := offs.Lookup("b", 0); o.At != 42 {
		t.Fatalf("committed offset after the internal-topic attempts: %+v", o)
	}
}
