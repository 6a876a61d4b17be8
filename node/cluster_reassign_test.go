package node

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ctrl"
)

// TestClusterReassignAndDecommission: through franz-go's kadm, a partition on one broker (RF 1) moves to the
// other two (RF 2). The new replicas fetch everything, the controller completes the move once they are in sync,
// the new leader serves every record, and the old broker deletes its copy. Then that broker is decommissioned:
// UnregisterBroker is refused while it runs, and succeeds once it shut down holding no replica.
func TestClusterReassignAndDecommission(t *testing.T) {
	tc := startCluster(t, 3, nil)
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "mv"); err != nil {
		t.Fatal(err)
	}
	// The committed partition as node i applied it.
	view := func(i int) (ctrl.Partition, bool) {
		s, _ := tc.nodes[i].cluster.currentView()
		if tp := s.Topics["mv"]; tp != nil {
			return tp.Partitions[0], true
		}
		return ctrl.Partition{}, false
	}
	waitAll := func(what string, ok func(ctrl.Partition) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for i := range tc.nodes {
			for {
				p, found := view(i)
				if found && ok(p) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: node %d sees %+v", what, i+1, p)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	waitAll("topic not created everywhere", func(p ctrl.Partition) bool { return len(p.ISR) == 1 })
	before, _ := view(0)
	old := before.Replicas[0]
	var target []int32
	for id := int32(1); id <= 3; id++ {
		if id != old {
			target = append(target, id)
		}
	}
	const total = 300
	prod := tc.client(kgo.DefaultProduceTopic("mv"))
	for i := 0; i < total; i++ {
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	unregister := func(id int32) error {
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = id
		resp, err := req.RequestWith(ctx, tc.client())
		if err != nil {
			t.Fatal(err)
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	if err := unregister(old); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("unregistering running broker %d holding the replica: %v, want INVALID_REQUEST", old, err)
	}

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("mv", 0, target)
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := res["mv"][0]; r.Err != nil {
		t.Fatalf("reassign to %v: %v (%s)", target, r.Err, r.ErrMessage)
	}
	// In progress (target first, then the old replica) or already done: nothing else.
	list, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"mv": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := list["mv"][0]; ok && (!slices.Equal(r.Replicas, append(slices.Clone(target), old)) ||
		!slices.Equal(r.AddingReplicas, target) || !slices.Equal(r.RemovingReplicas, []int32{old})) {
		t.Fatalf("listed reassignment %+v, want replicas %v+%d, adding %v, removing %d", r, target, old, target, old)
	}
	waitAll("reassignment did not complete", func(p ctrl.Partition) bool {
		return slices.Equal(p.Replicas, target) && !p.Reassigning() && p.Leader == target[0] && len(p.ISR) == 2
	})
	after, _ := view(0)
	if after.LeaderEpoch <= before.LeaderEpoch {
		t.Fatalf("leader epoch %d after the leader moved, was %d", after.LeaderEpoch, before.LeaderEpoch)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		md, err := adm.Metadata(ctx, "mv")
		if err != nil {
			t.Fatal(err)
		}
		p := md.Topics["mv"].Partitions[0]
		if slices.Equal(p.Replicas, target) && p.Leader == target[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metadata shows %+v, want replicas %v led by %d", p, target, target[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if list, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"mv": {0: {}}}); err != nil || len(list["mv"]) != 0 {
		t.Fatalf("reassignments after completion: %v %v", list, err)
	}

	cons := tc.client(kgo.ConsumeTopics("mv"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < total {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
	oldDir := filepath.Join(tc.dirs[old-1], "mv-0")
	for {
		if _, err := os.Stat(oldDir); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old replica directory %s still there", oldDir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range target {
		if _, err := os.Stat(filepath.Join(tc.dirs[id-1], "mv-0")); err != nil {
			t.Fatalf("new replica on broker %d: %v", id, err)
		}
	}

	// Decommission: shut the old broker down (fenced) and unregister it.
	tc.stop(int(old - 1))
	if err := unregister(old); err != nil {
		t.Fatalf("unregistering stopped broker %d: %v", old, err)
	}
	if err := unregister(old); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatalf("unregistering broker %d twice: %v", old, err)
	}
	for _, id := range target {
		if s, _ := tc.nodes[id-1].cluster.currentView(); s.Brokers[old] != nil {
			// The answer came from one broker; the others follow within moments.
			time.Sleep(200 * time.Millisecond)
			if s, _ = tc.nodes[id-1].cluster.currentView(); s.Brokers[old] != nil {
				t.Fatalf("node %d still lists broker %d", id, old)
			}
		}
	}
}
