package repl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/sluicemq/sluice/segstore"
)

func TestDecideOutOfRange(t *testing.T) {
	f := func(name string, fetch, start, end int64, want OutOfRange) {
		t.Helper()
		if got := DecideOutOfRange(fetch, start, end); got != want {
			t.Fatalf("%s: got %+v, want %+v", name, got, want)
		}
	}
	f("whole log below the leader's start", 10, 30, -1, OutOfRange{OutOfRangeStartAt, 30})
	f("below the start, end known and past us", 10, 30, 40, OutOfRange{OutOfRangeStartAt, 30})
	f("empty log below the leader's start", 0, 7, -1, OutOfRange{OutOfRangeStartAt, 7})
	f("leader's end below our fetch offset", 10, 0, 6, OutOfRange{OutOfRangeTruncate, 6})
	f("leader's end below us wins over its start", 10, 8, 6, OutOfRange{OutOfRangeTruncate, 6})
	f("at the leader's start: in range now", 30, 30, -1, OutOfRange{OutOfRangeRetry, 30})
	f("above the leader's start, end unknown", 35, 30, -1, OutOfRange{OutOfRangeRetry, 35})
	f("at the leader's end: in range now", 40, 30, 40, OutOfRange{OutOfRangeRetry, 40})
	f("leader's start unknown", 10, -1, -1, OutOfRange{OutOfRangeRetry, 10})
}

// replPair is a leader and a follower, each on its own segstore, the
// follower driven fetch by fetch as node's fetcher drives it.
type replPair struct {
	t      *testing.T
	lLog   *segstore.Log
	fLog   *segstore.Log
	ldr    *Leader
	fol    *Follower
	alters []AlterRequest
}

func openTestLog(t *testing.T) *segstore.Log {
	t.Helper()
	st, err := segstore.Open(segstore.Config{Dir: "/data", FS: vfs.NewMem(), Engine: ioring.NewFake(),
		Now: newFakeClock().Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := st.CreateLog("t", 0, segstore.LogConfig{SegmentBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newReplPair(t *testing.T, records int) *replPair {
	p := &replPair{t: t, lLog: openTestLog(t), fLog: openTestLog(t)}
	for i := range records {
		done := make(chan segstore.AppendResult, 1)
		if _, err := p.lLog.Append(makeBatch([]byte(fmt.Sprint(i))), 3, func(r segstore.AppendResult) { done <- r }); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	cfg := LeaderConfig{BrokerID: 1, Clock: newFakeClock(), AlterPartition: func(a AlterRequest) { p.alters = append(p.alters, a) }}
	p.ldr = NewLeader(cfg, p.lLog, PartitionState{Leader: 1, LeaderEpoch: 3, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1}}, 0)
	p.fol = NewFollower(FollowerConfig{BrokerID: 2}, p.fLog, 1, 3, 0)
	return p
}

// fetch runs one fetch of the follower's; an OFFSET_OUT_OF_RANGE answer
// goes to HandleOutOfRange, whose decision is returned.
func (p *replPair) fetch(maxBytes int64) (OutOfRange, error) {
	p.t.Helper()
	req := p.fol.Next()
	d := p.ldr.HandleFetch(FetchRequest{ReplicaID: 2, CurrentLeaderEpoch: req.LeaderEpoch,
		FetchOffset: req.FetchOffset, LastFetchedEpoch: req.LastFetchedEpoch})
	resp := FetchResponse{Err: d.Err, HighWatermark: d.HighWatermark, LogStartOffset: d.LogStartOffset, Diverging: d.Diverging}
	if d.Err == nil && d.Diverging == nil {
		recs, err := p.lLog.ReadCopy(req.FetchOffset, maxBytes, -1, nil)
		if err != nil {
			p.t.Fatalf("leader read at %d: %v", req.FetchOffset, err)
		}
		resp.Records = recs
	}
	err := p.fol.HandleFetch(req, resp)
	if errors.Is(err, kerr.OffsetOutOfRange) {
		return p.fol.HandleOutOfRange(req, resp.LogStartOffset, -1)
	}
	return OutOfRange{}, err
}

// TestFollowerRestartsAtLeaderLogStart: a follower whose log ends below the
// leader's log start (DeleteRecords ran while it was away) is told
// OFFSET_OUT_OF_RANGE, truncates fully, restarts at the leader's start,
// fetches the rest and is taken back into the ISR.
func TestFollowerRestartsAtLeaderLogStart(t *testing.T) {
	p := newReplPair(t, 40)
	if _, err := p.fetch(10 * 70); err != nil { // about ten batches
		t.Fatal(err)
	}
	if o := p.fLog.Offsets(); o.End == 0 || o.End >= 30 {
		t.Fatalf("the first fetch brought the follower to %d; want some of [0, 30)", o.End)
	}
	if _, err := p.lLog.DeleteRecords(30); err != nil {
		t.Fatal(err)
	}
	oor, err := p.fetch(1 << 20)
	if err != nil || oor != (OutOfRange{OutOfRangeStartAt, 30}) {
		t.Fatalf("fetch below the leader's start: %+v %v, want a restart at 30", oor, err)
	}
	if o, hw := p.fLog.Offsets(), p.fol.HighWatermark(); o.Start != 30 || o.End != 30 || hw != 30 {
		t.Fatalf("after the restart: offsets %+v HW %d, want all 30", o, hw)
	}
	if len(p.fLog.Epochs()) != 0 {
		t.Fatalf("epochs %v survived the restart", p.fLog.Epochs())
	}
	if _, err := p.fetch(1 << 20); err != nil {
		t.Fatal(err)
	}
	if lo, fo := p.lLog.Offsets(), p.fLog.Offsets(); lo.Start != fo.Start || lo.End != fo.End {
		t.Fatalf("leader %+v follower %+v", lo, fo)
	}
	lr, _ := p.lLog.ReadCopy(30, 1<<20, -1, nil)
	fr, _ := p.fLog.ReadCopy(30, 1<<20, -1, nil)
	if len(lr) == 0 || !bytes.Equal(lr, fr) {
		t.Fatalf("follower's log differs from the leader's above 30 (%d vs %d bytes)", len(fr), len(lr))
	}
	if !slices.Equal(p.lLog.Epochs(), p.fLog.Epochs()) {
		t.Fatalf("epochs: leader %v follower %v", p.lLog.Epochs(), p.fLog.Epochs())
	}
	// The leader learns the follower's new LEO from its next fetch, and the
	// follower learns the HW from the answer.
	if _, err := p.fetch(1 << 20); err != nil {
		t.Fatal(err)
	}
	if len(p.alters) == 0 || !slices.Equal(p.alters[len(p.alters)-1].ISR, []int32{1, 2}) {
		t.Fatalf("the leader proposed %+v, want the follower back in the ISR", p.alters)
	}
	if hw := p.fol.HighWatermark(); hw != 40 {
		t.Fatalf("follower HW %d, want 40", hw)
	}
}

func TestFollowerHandleOutOfRange(t *testing.T) {
	setup := func(hw int64) *replPair {
		p := newReplPair(t, 10)
		if _, err := p.fetch(1 << 20); err != nil {
			t.Fatal(err)
		}
		if o := p.fLog.Offsets(); o.End != 10 {
			t.Fatalf("follower at %d, want 10", o.End)
		}
		p.fol = NewFollower(FollowerConfig{BrokerID: 2}, p.fLog, 1, 3, hw) // as after a restart with that HW
		return p
	}
	f := func(name string, hw, followerStart, leaderStart, leaderEnd int64, want OutOfRange, wantStart, wantEnd, wantHW int64) {
		t.Helper()
		p := setup(hw)
		if followerStart > 0 {
			if _, err := p.fLog.DeleteRecords(followerStart); err != nil {
				t.Fatal(err)
			}
		}
		got, err := p.fol.HandleOutOfRange(p.fol.Next(), leaderStart, leaderEnd)
		if err != nil || got != want {
			t.Fatalf("%s: %+v %v, want %+v", name, got, err, want)
		}
		if o, h := p.fLog.Offsets(), p.fol.HighWatermark(); o.Start != wantStart || o.End != wantEnd || h != wantHW {
			t.Fatalf("%s: offsets %+v HW %d, want start %d end %d HW %d", name, o, h, wantStart, wantEnd, wantHW)
		}
	}
	f("in range now: nothing happens", 8, 0, 10, -1, OutOfRange{OutOfRangeRetry, 10}, 0, 10, 8)
	f("below the leader's start", 8, 0, 25, -1, OutOfRange{OutOfRangeStartAt, 25}, 25, 25, 25)
	f("leader ends earlier: cut, HW follows", 8, 0, 0, 6, OutOfRange{OutOfRangeTruncate, 6}, 0, 6, 6)
	f("leader ends earlier, above our HW", 4, 0, 0, 6, OutOfRange{OutOfRangeTruncate, 6}, 0, 6, 4)
	f("leader ends below our start: full truncation there", 8, 5, 0, 3, OutOfRange{OutOfRangeStartAt, 3}, 3, 3, 3)

	// A stale answer (the log moved since the request) changes nothing.
	p := setup(8)
	req := p.fol.Next()
	if err := p.fLog.TruncateTo(7); err != nil {
		t.Fatal(err)
	}
	if got, err := p.fol.HandleOutOfRange(req, 25, -1); err != nil || got.Action != OutOfRangeRetry {
		t.Fatalf("stale answer: %+v %v", got, err)
	}
	if o := p.fLog.Offsets(); o.Start != 0 || o.End != 7 {
		t.Fatalf("a stale answer changed the log: %+v", o)
	}
}
