package node

import (
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

// testFetchState is a session cache with a settable clock and no broker.
func testFetchState(slots int, now *time.Time) *fetchState {
	return &fetchState{now: func() time.Time { return *now }, maxSessions: slots,
		sessions: map[int32]*fetchSession{}, parked: map[*fetchOp]struct{}{}}
}

// sessionItems makes answered items for partitions 0..n-1 of topic t.
func sessionItems(t string, n int) []fetchItem {
	var out []fetchItem
	for p := 0; p < n; p++ {
		it := fetchItem{topic: t, partition: int32(p), offset: 10, maxBytes: 1 << 20, curEpoch: -1, lastFetchedEpoch: -1}
		it.hw, it.lso, it.logStart = 10, 10, 0
		out = append(out, it)
	}
	return out
}

func incrementalReq(id, epoch int32, mod func(*kmsg.FetchRequest)) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.SessionID, req.SessionEpoch = 12, id, epoch
	if mod != nil {
		mod(req)
	}
	return req
}

func TestFetchSessionCacheEviction(t *testing.T) {
	now := time.Unix(1000, 0)
	fs := testFetchState(2, &now)
	a := fs.createSession(false, sessionItems("a", 3))
	b := fs.createSession(false, sessionItems("b", 1))
	if a == 0 || b == 0 || a == b {
		t.Fatalf("ids %d %d", a, b)
	}
	if id := fs.createSession(false, sessionItems("c", 2)); id != 0 {
		t.Fatal("a full cache of young sessions took a new one")
	}
	now = now.Add(time.Minute)
	if s, _, _, code := fs.sessionFor(incrementalReq(a, 1, nil), nil); s == nil || code != 0 {
		t.Fatalf("using session a: %v", kerr.ErrorForCode(code))
	}
	now = now.Add(fetchSessionEvictAfter - time.Minute + time.Second)
	c := fs.createSession(false, sessionItems("c", 2))
	if c == 0 || fs.sessions[b] != nil || fs.sessions[a] == nil {
		t.Fatal("the idle session b was not the one evicted")
	}
	if id := fs.createSession(false, sessionItems("d", 1)); id != 0 {
		t.Fatal("a small new session evicted a bigger old one")
	}
	if d := fs.createSession(false, sessionItems("d", 5)); d == 0 || fs.sessions[a] != nil {
		t.Fatal("a bigger new session did not evict the smaller old one")
	}
	fs.maxSessions = 0
	if id := fs.createSession(false, sessionItems("e", 1)); id != 0 {
		t.Fatal("sessions created with no slots")
	}
}

func TestFetchSessionIncrementalUpdates(t *testing.T) {
	now := time.Unix(1000, 0)
	fs := testFetchState(10, &now)
	id := fs.createSession(false, sessionItems("t", 3))

	if _, _, _, code := fs.sessionFor(incrementalReq(id, 2, nil), nil); code != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("wrong epoch: %v", kerr.ErrorForCode(code))
	}
	if _, _, _, code := fs.sessionFor(incrementalReq(id+1, 1, nil), nil); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("wrong id: %v", kerr.ErrorForCode(code))
	}
	req := incrementalReq(id, 1, nil)
	req.Version = 13
	if _, _, _, code := fs.sessionFor(req, nil); code != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("ids in a name session: %v", kerr.ErrorForCode(code))
	}

	// Move partition 1 on, add partition 7 of another topic, forget 2.
	s, epoch, items, code := fs.sessionFor(incrementalReq(id, 1, func(r *kmsg.FetchRequest) {
		r.Topics = []kmsg.FetchRequestTopic{
			{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 1, FetchOffset: 20, PartitionMaxBytes: 5}}},
			{Topic: "u", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 7, FetchOffset: 3, PartitionMaxBytes: 6}}},
		}
		r.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "t", Partitions: []int32{2}}}
	}), nil)
	if code != 0 || s == nil || epoch != 2 {
		t.Fatalf("update: code %d epoch %d", code, epoch)
	}
	var got []sessKey
	for _, it := range items {
		got = append(got, sessKey{topic: it.topic, partition: it.partition})
	}
	want := []sessKey{{"t", [16]byte{}, 0}, {"t", [16]byte{}, 1}, {"u", [16]byte{}, 7}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("session partitions %v, want %v", got, want)
	}
	if items[1].offset != 20 || items[1].maxBytes != 5 || items[2].offset != 3 {
		t.Fatalf("updated parameters not used: %+v", items)
	}

	// Answer: t/0 unchanged, t/1 has records, u/7 is new (always answered).
	for i := range items {
		items[i].hw, items[i].lso, items[i].logStart = 10, 10, 0
	}
	items[1].records = segstore.Slice{Len: 100}
	if !s.filter(epoch, items) {
		t.Fatal("filter refused the current epoch")
	}
	if !items[0].omit || items[1].omit || items[2].omit {
		t.Fatalf("omit flags %v %v %v", items[0].omit, items[1].omit, items[2].omit)
	}
	// t/1 returned records: it moves to the end for fairness.
	if s.parts[0].key.partition != 0 || s.parts[1].key.topic != "u" || s.parts[2].key.partition != 1 {
		t.Fatalf("session order after records: %v %v %v", s.parts[0].key, s.parts[1].key, s.parts[2].key)
	}
	if s.filter(epoch-1, items) {
		t.Fatal("filter accepted a stale epoch")
	}

	// An error is always answered and re-answered once it clears.
	_, epoch, items, _ = fs.sessionFor(incrementalReq(id, 2, nil), nil)
	for i := range items {
		items[i].hw, items[i].lso, items[i].logStart = 10, 10, 0
	}
	items[0].err, items[0].hw, items[0].lso, items[0].logStart = kerr.OffsetOutOfRange.Code, -1, -1, -1
	s.filter(epoch, items)
	if items[0].omit || !items[1].omit || !items[2].omit {
		t.Fatal("error answer")
	}
	_, epoch, items, _ = fs.sessionFor(incrementalReq(id, 3, nil), nil)
	for i := range items {
		items[i].hw, items[i].lso, items[i].logStart = 10, 10, 0
	}
	s.filter(epoch, items)
	if items[0].omit || !items[1].omit {
		t.Fatal("a cleared error was not answered")
	}

	// Forgetting everything closes the session.
	_, _, _, code = fs.sessionFor(incrementalReq(id, 4, func(r *kmsg.FetchRequest) {
		r.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "t", Partitions: []int32{0, 1}}, {Topic: "u", Partitions: []int32{7}}}
	}), nil)
	if code != 0 || fs.sessions[id] != nil {
		t.Fatalf("emptied session: code %d, still cached %v", code, fs.sessions[id] != nil)
	}

	if nextFetchEpoch(math.MaxInt32) != 1 || nextFetchEpoch(5) != 6 {
		t.Fatal("epoch wrap")
	}
}

// Closing an emptied session keeps the documented lock order (fetchState.mu,
// then fetchSession.mu): a goroutine taking them in that order must not
// deadlock with incremental fetches that forget their last partition.
func TestFetchSessionEmptiedLockOrder(t *testing.T) {
	now := time.Unix(1000, 0)
	fs := testFetchState(1000, &now)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the documented order, over and over
		for {
			select {
			case <-stop:
				return
			default:
			}
			fs.mu.Lock()
			for _, s := range fs.sessions {
				s.mu.Lock()
				s.mu.Unlock() //nolint:staticcheck // taking the lock is the point
			}
			fs.mu.Unlock()
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5000; i++ {
			id := fs.createSession(false, sessionItems("t", 1))
			_, _, _, code := fs.sessionFor(incrementalReq(id, 1, func(r *kmsg.FetchRequest) {
				r.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "t", Partitions: []int32{0}}}
			}), nil)
			if code != 0 {
				t.Errorf("forgetting the last partition: %v", kerr.ErrorForCode(code))
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("deadlock: sessionFor takes fetchState.mu while holding fetchSession.mu")
	}
	if c := fs.count(false); c != 0 {
		t.Fatalf("%d emptied sessions still cached", c)
	}
}
