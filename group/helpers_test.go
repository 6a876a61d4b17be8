package group

import (
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type harness struct {
	t     testing.TB
	c     *Coordinator
	clock *fakeClock
	log   *fakeLog
	cfg   Config
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newHarness returns a coordinator owning every partition, with Kafka's
// default timings, a fake clock and a synchronous fake log. Topics "t1",
// "t2", "t3" exist with 4 partitions each.
func newHarness(t testing.TB, mods ...func(*Config)) *harness {
	t.Helper()
	h := newHarnessOn(t, newFakeLog(), mods...)
	for p := int32(0); p < h.cfg.Partitions; p++ {
		if err := h.c.Load(p, func(func(k, v []byte) bool) {}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// newHarnessOn returns a coordinator on log that owns no partition yet.
func newHarnessOn(t testing.TB, log *fakeLog, mods ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), log: log}
	h.cfg = DefaultConfig()
	h.cfg.Clock = h.clock
	h.cfg.Logger = quietLogger()
	h.cfg.TopicExists = func(topic string, p int32) bool {
		return (topic == "t1" || topic == "t2" || topic == "t3") && p >= 0 && p < 4
	}
	for _, m := range mods {
		m(&h.cfg)
	}
	h.c = New(h.cfg, h.log)
	t.Cleanup(h.c.Close)
	return h
}

// call is a request whose answer may come later.
type call struct {
	t    testing.TB
	mu   sync.Mutex
	resp []kmsg.Response
}

func (c *call) respond(r kmsg.Response) {
	c.mu.Lock()
	c.resp = append(c.resp, r)
	c.mu.Unlock()
}

func (c *call) answered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.resp) > 1 {
		c.t.Fatalf("answered %d times", len(c.resp))
	}
	return len(c.resp) == 1
}

func (c *call) get() kmsg.Response {
	c.t.Helper()
	if !c.answered() {
		c.t.Fatal("request not answered")
	}
	return c.resp[0]
}

func (h *harness) send(req kmsg.Request) *call {
	return h.sendFrom(Client{ID: "client", Host: "/127.0.0.1"}, req)
}

func (h *harness) sendFrom(cl Client, req kmsg.Request) *call {
	c := &call{t: h.t}
	h.c.HandleFrom(cl, req, c.respond)
	return c
}

// do sends a request that must be answered at once.
func (h *harness) do(req kmsg.Request) kmsg.Response {
	h.t.Helper()
	c := h.send(req)
	if !c.answered() {
		h.t.Fatalf("%T not answered synchronously", req)
	}
	return c.get()
}

func subscription(topics ...string) []byte {
	m := kmsg.ConsumerMemberMetadata{Version: 0, Topics: topics}
	return m.AppendTo(nil)
}

// joinOpt edits a JoinGroup request built by joinReq.
type joinOpt func(*kmsg.JoinGroupRequest)

func withVersion(v int16) joinOpt { return func(r *kmsg.JoinGroupRequest) { r.Version = v } }
func withInstance(id string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.InstanceID = &id }
}
func withProtocols(names ...string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.Protocols = nil
		for _, n := range names {
			r.Protocols = append(r.Protocols, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: subscription("t1")})
		}
	}
}
func withSubscription(topics ...string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		for i := range r.Protocols {
			r.Protocols[i].Metadata = subscription(topics...)
		}
	}
}
func withTimeouts(session, rebalance time.Duration) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.SessionTimeoutMillis = int32(session.Milliseconds())
		r.RebalanceTimeoutMillis = int32(rebalance.Milliseconds())
	}
}

// joinReq is a JoinGroup v9 of the "consumer" type with the "range"
// protocol subscribed to t1, session 10s, rebalance 30s.
func joinReq(group, memberID string, opts ...joinOpt) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group = group
	r.MemberID = memberID
	r.SessionTimeoutMillis = 10_000
	r.RebalanceTimeoutMillis = 30_000
	r.ProtocolType = "consumer"
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: subscription("t1")}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// join does the KIP-394 dance for a dynamic member (or a direct join for a
// static one) and returns the parked second JoinGroup.
func (h *harness) join(group string, opts ...joinOpt) *call {
	h.t.Helper()
	req := joinReq(group, "", opts...)
	first := h.send(req)
	if req.InstanceID != nil || req.Version < 4 {
		return first
	}
	r := first.get().(*kmsg.JoinGroupResponse)
	if r.ErrorCode != kerr.MemberIDRequired.Code {
		h.t.Fatalf("first join: %v, want MEMBER_ID_REQUIRED", kerr.ErrorForCode(r.ErrorCode))
	}
	req2 := joinReq(group, r.MemberID, opts...)
	return h.send(req2)
}

func joinResp(t testing.TB, c *call) *kmsg.JoinGroupResponse {
	t.Helper()
	r := c.get().(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	return r
}

func syncReq(group, member string, gen int32, assign map[string][]byte) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, member, gen
	pt, pn := "consumer", "range"
	r.ProtocolType, r.Protocol = &pt, &pn
	for id, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return r
}

func (h *harness) heartbeat(group, member string, gen int32, instance ...string) int16 {
	h.t.Helper()
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, member, gen
	if len(instance) > 0 {
		r.InstanceID = &instance[0]
	}
	return h.do(r).(*kmsg.HeartbeatResponse).ErrorCode
}

func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	h.t.Helper()
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 5
	r.Groups = []string{group}
	return h.do(r).(*kmsg.DescribeGroupsResponse).Groups[0]
}

func (h *harness) state(group string) string { h.t.Helper(); return h.describe(group).State }

// stableGroup forms a group of n dynamic members through a full
// join/sync round and returns their ids (leader first) and the generation.
func (h *harness) stableGroup(group string, n int) ([]string, int32) {
	h.t.Helper()
	calls := make([]*call, n)
	for i := range calls {
		calls[i] = h.join(group)
	}
	for i := 0; i < 60 && !calls[0].answered(); i++ { // at most the rebalance timeout
		h.clock.Advance(time.Second)
	}
	ids := make([]string, n)
	var leader string
	var gen int32
	for i, c := range calls {
		r := joinResp(h.t, c)
		ids[i], leader, gen = r.MemberID, r.LeaderID, r.Generation
	}
	if ids[0] != leader {
		h.t.Fatalf("leader %s, want first joiner %s", leader, ids[0])
	}
	assign := map[string][]byte{}
	for _, id := range ids {
		assign[id] = []byte("assignment-of-" + id)
	}
	syncs := make([]*call, n)
	for i := n - 1; i >= 0; i-- { // followers first, the leader last
		a := map[string][]byte(nil)
		if i == 0 {
			a = assign
		}
		syncs[i] = h.send(syncReq(group, ids[i], gen, a))
	}
	for i, s := range syncs {
		r := s.get().(*kmsg.SyncGroupResponse)
		if r.ErrorCode != 0 || string(r.MemberAssignment) != "assignment-of-"+ids[i] {
			h.t.Fatalf("sync %d: %v %q", i, kerr.ErrorForCode(r.ErrorCode), r.MemberAssignment)
		}
	}
	if st := h.state(group); st != "Stable" {
		h.t.Fatalf("state %s after sync", st)
	}
	return ids, gen
}

func commitReq(group, member string, gen int32, offsets map[string]int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 9
	r.Group, r.MemberID, r.Generation = group, member, gen
	keys := make([]string, 0, len(offsets))
	for k := range offsets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys { // "topic/partition"
		topic, part := splitTP(k)
		t := kmsg.NewOffsetCommitRequestTopic()
		t.Topic = topic
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset = part, offsets[k]
		md := "md"
		p.Metadata = &md
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	}
	return r
}

func splitTP(k string) (string, int32) {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			var p int32
			for _, c := range k[i+1:] {
				p = p*10 + int32(c-'0')
			}
			return k[:i], p
		}
	}
	return k, 0
}

// commitCodes answers a commit with "topic/partition" -> error code.
func commitCodes(r kmsg.Response) map[string]int16 {
	out := map[string]int16{}
	for _, t := range r.(*kmsg.OffsetCommitResponse).Topics {
		for _, p := range t.Partitions {
			out[t.Topic+"/"+itoa(p.Partition)] = p.ErrorCode
		}
	}
	return out
}

func itoa(p int32) string {
	if p == 0 {
		return "0"
	}
	var b []byte
	for ; p > 0; p /= 10 {
		b = append([]byte{byte('0' + p%10)}, b...)
	}
	return string(b)
}

// fetch returns "topic/partition" -> offset for the group (every offset).
func (h *harness) fetch(group string) map[string]int64 {
	h.t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = group
	resp := h.do(r).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	out := map[string]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[t.Topic+"/"+itoa(p.Partition)] = p.Offset
		}
	}
	return out
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

func wantCode(t testing.TB, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %s, want %s", what, errName(got), errName(want))
	}
}
