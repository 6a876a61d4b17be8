package node

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicemq/sluice/ctrl"
)

// lockedBuffer is a log destination tests read while nodes write to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A follower that was down while DeleteRecords moved the leader's log start
// past its whole log is answered OFFSET_OUT_OF_RANGE when it comes back; it
// truncates fully, restarts its log at the leader's log start, catches up
// and rejoins the ISR, holding exactly the leader's records from there.
func TestClusterReplicaTruncatedFullyRejoins(t *testing.T) {
	tc := startCluster(t, 3, nil)
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("1")}, "tf"); err != nil {
		t.Fatal(err)
	}
	prod := tc.client(kgo.DefaultProduceTopic("tf"), kgo.RequiredAcks(kgo.AllISRAcks()))
	produce := func(k int) {
		t.Helper()
		for range k {
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	part := func(s *ctrl.State) (ctrl.Partition, bool) {
		if tp := s.Topics["tf"]; tp != nil {
			return tp.Partitions[0], true
		}
		return ctrl.Partition{}, false
	}
	produce(20)
	s := tc.waitView(0, "tf-0 with all three replicas in sync", func(s *ctrl.State) bool {
		p, ok := part(s)
		return ok && len(p.ISR) == 3
	})
	p0, _ := part(s)
	leader := p0.Leader
	victim := p0.Replicas[0]
	if victim == leader {
		victim = p0.Replicas[1]
	}
	vi, li := int(victim-1), int(leader-1)
	waitFor(t, "the victim to hold the first 20 records", func() bool {
		return tc.nodes[vi].reg.partition("tf", 0).getLog().Offsets().End == 20
	})

	tc.stop(vi)
	tc.waitView(li, "the stopped follower out of the ISR", func(s *ctrl.State) bool {
		p, ok := part(s)
		return ok && !slices.Contains(p.ISR, victim)
	})
	produce(100)
	ll := tc.nodes[li].reg.partition("tf", 0).getLog()
	rs, err := adm.DeleteRecords(ctx, func() kadm.Offsets {
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "tf", Partition: 0, At: 110})
		return os
	}())
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := rs.Lookup("tf", 0); !ok || r.Err != nil || r.LowWatermark != 110 {
		t.Fatalf("DeleteRecords: %+v", r)
	}
	if o := ll.Offsets(); o.Start != 110 || o.End != 120 {
		t.Fatalf("leader's log after DeleteRecords: %+v", o)
	}
	produce(10)

	logs := &lockedBuffer{}
	tc.cfgs[vi].Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", victim)
	tc.restart(vi)
	tc.waitView(li, "the restarted follower back in the ISR", func(s *ctrl.State) bool {
		p, ok := part(s)
		return ok && len(p.ISR) == 3
	})
	produce(5)
	vl := tc.nodes[vi].reg.partition("tf", 0).getLog()
	waitFor(t, "the follower to reach the leader's log end", func() bool { return vl.Offsets().End == ll.Offsets().End })
	lo, vo := ll.Offsets(), vl.Offsets()
	if vo.Start != lo.Start || lo.Start != 110 || lo.End != 135 {
		t.Fatalf("leader %+v, follower %+v: want both [110, 135)", lo, vo)
	}
	a, err := ll.ReadCopy(lo.Start, 1<<30, lo.End, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := vl.ReadCopy(vo.Start, 1<<30, vo.End, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("the follower's records from %d differ from the leader's (%d vs %d bytes)", lo.Start, len(b), len(a))
	}
	if _, err := vl.ReadCopy(20, 1<<20, -1, nil); err == nil {
		t.Fatal("the follower still serves offset 20, below its log start")
	}
	if !slices.Equal(ll.Epochs(), vl.Epochs()) {
		t.Fatalf("epochs: leader %v, follower %v", ll.Epochs(), vl.Epochs())
	}
	if out := logs.String(); !strings.Contains(out, "truncated fully, restarting at 110") {
		t.Fatalf("no INFO line about the full truncation in the follower's log:\n%s", out)
	}
}
