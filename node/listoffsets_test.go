package node

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

// produceAt produces one record per timestamp (milliseconds) to partition p,
// each in its own batch, and returns their offsets.
func produceAt(t *testing.T, cl *kgo.Client, topic string, p int32, tss ...int64) []int64 {
	t.Helper()
	var offs []int64
	for _, ts := range tss {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte("v"), Timestamp: time.UnixMilli(ts)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		offs = append(offs, r.Offset)
	}
	return offs
}

func createTopic(t *testing.T, n *Node, name string, parts int32, configs map[string]*string) {
	t.Helper()
	res, err := newAdmin(t, n).CreateTopic(testCtx(t), parts, 1, configs, name)
	if err != nil || res.Err != nil {
		t.Fatalf("create %s: %v %v", name, err, res.Err)
	}
}

// listOffsetsReq builds a request for one partition per timestamp.
func listOffsetsReq(topic string, part int32, leaderEpoch int32, tss ...int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, ts := range tss {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = part, ts, leaderEpoch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func listOne(t *testing.T, cl *kgo.Client, req *kmsg.ListOffsetsRequest) []kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	kr, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(kr.Topics) != 1 {
		t.Fatalf("%d topics in response", len(kr.Topics))
	}
	return kr.Topics[0].Partitions
}

func TestListOffsets(t *testing.T) {
	n := startNode(t, "", nil)
	createTopic(t, n, "lo", 2, nil)
	cl := newClient(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := newAdmin(t, n)
	ctx := testCtx(t)
	base := time.Now().Add(-time.Hour).UnixMilli()
	// Out-of-order timestamps: offset 3 carries the maximum.
	produceAt(t, cl, "lo", 0, base+1000, base+3000, base+2000, base+5000, base+4000)

	starts, err := adm.ListStartOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32][2]int64{0: {0, 5}, 1: {0, 0}} {
		s, _ := starts.Lookup("lo", p)
		e, _ := ends.Lookup("lo", p)
		if s.Err != nil || e.Err != nil || s.Offset != want[0] || e.Offset != want[1] {
			t.Errorf("partition %d: start %+v end %+v, want %v", p, s, e, want)
		}
		if s.LeaderEpoch != 0 || e.LeaderEpoch != 0 || s.Timestamp != -1 || e.Timestamp != -1 {
			t.Errorf("partition %d: epochs %d %d timestamps %d %d", p, s.LeaderEpoch, e.LeaderEpoch, s.Timestamp, e.Timestamp)
		}
	}

	f := func(ms, wantOff, wantTs int64) {
		t.Helper()
		lo, err := adm.ListOffsetsAfterMilli(ctx, ms, "lo")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("lo", 0)
		if o.Err != nil || o.Offset != wantOff || o.Timestamp != wantTs {
			t.Errorf("after %d: %+v, want offset %d timestamp %d", ms-base, o, wantOff, wantTs)
		}
	}
	f(base, 0, base+1000)
	f(base+1000, 0, base+1000)
	f(base+2500, 1, base+3000)
	f(base+4500, 3, base+5000)
	f(base+5000, 3, base+5000)
	// Nothing that new: kadm re-asks for the end offset.
	f(base+9000, 5, -1)

	maxes, err := adm.ListMaxTimestampOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := maxes.Lookup("lo", 0); o.Err != nil || o.Offset != 3 || o.Timestamp != base+5000 {
		t.Errorf("max timestamp: %+v", o)
	}
	// An empty partition has none: kadm re-asks for the end offset.
	if o, _ := maxes.Lookup("lo", 1); o.Err != nil || o.Offset != 0 || o.Timestamp != -1 {
		t.Errorf("max timestamp of an empty partition: %+v", o)
	}
	if ps := listOne(t, cl, listOffsetsReq("lo", 1, -1, -3)); ps[0].Offset != -1 || ps[0].Timestamp != -1 {
		t.Errorf("raw max timestamp of an empty partition: %+v", ps[0])
	}

	// Raw: not found is -1/-1 with no error; -4 is the log start; read_committed is the HW.
	ps := listOne(t, cl, listOffsetsReq("lo", 0, -1, base+9000))
	if ps[0].ErrorCode != 0 || ps[0].Offset != -1 || ps[0].Timestamp != -1 || ps[0].LeaderEpoch != -1 {
		t.Errorf("not found: %+v", ps[0])
	}
	ps = listOne(t, cl, listOffsetsReq("lo", 0, 0, -4))
	if ps[0].ErrorCode != 0 || ps[0].Offset != 0 || ps[0].LeaderEpoch != 0 {
		t.Errorf("earliest local: %+v", ps[0])
	}
	req := listOffsetsReq("lo", 0, -1, -1)
	req.IsolationLevel = 1
	if ps = listOne(t, cl, req); ps[0].ErrorCode != 0 || ps[0].Offset != 5 {
		t.Errorf("read_committed latest: %+v", ps[0])
	}
	if lo, err := adm.ListCommittedOffsets(ctx, "lo"); err != nil {
		t.Fatal(err)
	} else if o, _ := lo.Lookup("lo", 0); o.Offset != 5 {
		t.Errorf("committed offsets: %+v", o)
	}
}

func TestListOffsetsErrors(t *testing.T) {
	n := startNode(t, "", nil)
	createTopic(t, n, "le", 1, nil)
	cl := newClient(t, n)
	produceAt(t, cl, "le", 0, time.Now().UnixMilli())

	// Raw: kgo answers unknown partitions itself and may split a request.
	r := dialRaw(t, n)
	corr := int32(0)
	f := func(name string, req *kmsg.ListOffsetsRequest, want ...int16) {
		t.Helper()
		corr++
		req.Version = 8
		ps := r.request(req, corr).(*kmsg.ListOffsetsResponse).Topics[0].Partitions
		if len(ps) != len(want) {
			t.Fatalf("%s: %d partitions answered, want %d", name, len(ps), len(want))
		}
		for i, w := range want {
			if ps[i].ErrorCode != w {
				t.Errorf("%s: partition %d error %v, want %v", name, i, kerr.ErrorForCode(ps[i].ErrorCode), kerr.ErrorForCode(w))
			}
		}
	}
	f("unknown topic", listOffsetsReq("nope", 0, -1, -1), kerr.UnknownTopicOrPartition.Code)
	f("unknown partition", listOffsetsReq("le", 7, -1, -1), kerr.UnknownTopicOrPartition.Code)
	f("negative partition", listOffsetsReq("le", -1, -1, -2), kerr.UnknownTopicOrPartition.Code)
	f("duplicate partition", listOffsetsReq("le", 0, -1, -1, -2), kerr.InvalidRequest.Code, kerr.InvalidRequest.Code)
	f("newer leader epoch", listOffsetsReq("le", 0, 1, -1), kerr.UnknownLeaderEpoch.Code)
	f("unknown special timestamp", listOffsetsReq("le", 0, -1, -7), kerr.UnsupportedVersion.Code)
	f("tiered timestamp", listOffsetsReq("le", 0, -1, -5), kerr.UnsupportedVersion.Code)

	// A special timestamp below the version that introduced it.
	req := listOffsetsReq("le", 0, -1, -3)
	req.Version = 6
	resp := r.request(req, 100).(*kmsg.ListOffsetsResponse)
	if c := resp.Topics[0].Partitions[0].ErrorCode; c != kerr.UnsupportedVersion.Code {
		t.Errorf("-3 at v6: %v", kerr.ErrorForCode(c))
	}
	// v1 (no leader epoch fields) still answers.
	req = listOffsetsReq("le", 0, -1, -1)
	req.Version = 1
	resp = r.request(req, 101).(*kmsg.ListOffsetsResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != 1 {
		t.Errorf("v1 latest: %+v", p)
	}
	// Below the served range the connection is closed, as for any
	// unsupported version.
	req.Version = 0
	// A fenced leader epoch: move the partition to epoch 2.
	p := n.reg.partition("le", 0)
	st := p.state()
	st.LeaderEpoch = 2
	p.st.Store(&st)
	f("older leader epoch", listOffsetsReq("le", 0, 1, -1), kerr.FencedLeaderEpoch.Code)
	f("current leader epoch", listOffsetsReq("le", 0, 2, -1), 0)

	// Below the served range the connection is closed, as for any
	// unsupported version.
	req.Version = 0
	r.send(2, 0, 200, req.AppendTo(nil))
	r.expectClosed()
}

// TestLeaderEpochs checks the epochs ListOffsets and OffsetForLeaderEpoch
// report once a partition has seen several leader epochs.
func TestLeaderEpochs(t *testing.T) {
	n := startNode(t, "", nil)
	createTopic(t, n, "ep", 1, nil)
	cl := newClient(t, n)
	p := n.reg.partition("ep", 0)
	setEpoch := func(e int32) {
		st := p.state()
		st.LeaderEpoch = e
		p.st.Store(&st)
	}
	base := time.Now().Add(-time.Hour).UnixMilli()
	produceAt(t, cl, "ep", 0, base, base+1, base+2) // offsets 0-2 in epoch 0
	setEpoch(2)
	produceAt(t, cl, "ep", 0, base+3, base+4) // offsets 3-4 in epoch 2
	setEpoch(3)                               // current, nothing written yet

	ps := listOne(t, cl, listOffsetsReq("ep", 0, -1, -2))
	if ps[0].Offset != 0 || ps[0].LeaderEpoch != 0 {
		t.Errorf("earliest: %+v", ps[0])
	}
	ps = listOne(t, cl, listOffsetsReq("ep", 0, -1, base+3))
	if ps[0].Offset != 3 || ps[0].LeaderEpoch != 2 || ps[0].Timestamp != base+3 {
		t.Errorf("by timestamp: %+v", ps[0])
	}
	ps = listOne(t, cl, listOffsetsReq("ep", 0, -1, -1))
	if ps[0].Offset != 5 || ps[0].LeaderEpoch != 3 {
		t.Errorf("latest: %+v", ps[0])
	}

	ofe := func(current int32, epochs ...int32) []kmsg.OffsetForLeaderEpochResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "ep"
		for _, e := range epochs {
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = 0, e, current
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(testCtx(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions
	}
	want := [][2]int64{{0, 3}, {0, 3}, {2, 5}, {3, 5}, {-1, -1}, {-1, -1}}
	for i, got := range ofe(-1, 0, 1, 2, 3, 4, -1) {
		if got.ErrorCode != 0 || int64(got.LeaderEpoch) != want[i][0] || got.EndOffset != want[i][1] {
			t.Errorf("epoch case %d: got epoch %d end %d err %v, want %v", i, got.LeaderEpoch, got.EndOffset,
				kerr.ErrorForCode(got.ErrorCode), want[i])
		}
	}
	if got := ofe(2, 0)[0]; got.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Errorf("fenced: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := ofe(4, 0)[0]; got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("unknown epoch: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := ofe(3, 3)[0]; got.ErrorCode != 0 || got.EndOffset != 5 {
		t.Errorf("current epoch: %+v", got)
	}

	// After DeleteRecords into epoch 2 the history starts there.
	if _, code := n.deleteRecords("ep", 0, 4); code != 0 {
		t.Fatalf("delete records: %v", kerr.ErrorForCode(code))
	}
	ps = listOne(t, cl, listOffsetsReq("ep", 0, -1, -2))
	if ps[0].Offset != 4 || ps[0].LeaderEpoch != 2 {
		t.Errorf("earliest after delete: %+v", ps[0])
	}
	if got := ofe(-1, 0)[0]; got.LeaderEpoch != 0 || got.EndOffset != 4 {
		t.Errorf("epoch older than the history: epoch %d end %d, want 0 4", got.LeaderEpoch, got.EndOffset)
	}

	// Unknown topic, and v0 (no epoch in the answer) over a raw connection.
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 0
	for _, name := range []string{"ep", "nope"} {
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = name
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.LeaderEpoch = 2
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp := dialRaw(t, n).request(req, 1).(*kmsg.OffsetForLeaderEpochResponse)
	if got := resp.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.EndOffset != 5 {
		t.Errorf("v0: %+v", got)
	}
	if got := resp.Topics[1].Partitions[0]; got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("v0 unknown topic: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

func TestEndOffsetForEpoch(t *testing.T) {
	hist := []segstore.EpochEntry{{Epoch: 1, StartOffset: 10}, {Epoch: 3, StartOffset: 20}, {Epoch: 4, StartOffset: 35}}
	f := func(requested int32, wantEpoch int32, wantOff int64) {
		t.Helper()
		e, off := endOffsetForEpoch(hist, requested, 50)
		if e != wantEpoch || off != wantOff {
			t.Errorf("epoch %d: (%d, %d), want (%d, %d)", requested, e, off, wantEpoch, wantOff)
		}
	}
	f(-1, -1, -1)
	f(0, 0, 10) // older than the history: itself, the first start
	f(1, 1, 20)
	f(2, 1, 20)
	f(3, 3, 35)
	f(4, 4, 50) // the latest ends at the log end
	f(5, -1, -1)
	if e, off := endOffsetForEpoch(nil, 0, 0); e != -1 || off != -1 {
		t.Errorf("empty history: (%d, %d)", e, off)
	}
	if got := epochForOffset(hist, 25); got != 3 {
		t.Errorf("epoch of offset 25: %d", got)
	}
	if got := epochForOffset(hist, 5); got != -1 {
		t.Errorf("epoch of offset 5: %d", got)
	}
}
