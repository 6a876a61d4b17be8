package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ctrl"
)

// createTopicsReq builds a CreateTopics topic; assign lists the replicas of
// partitions 0, 1, ... (none: no assignment).
func createTopicsReq(name string, parts int32, rf int16, assign ...[]int32) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
	for i, rs := range assign {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	return rt
}

func createTopicsRaw(t *testing.T, ctx context.Context, cl *kgo.Client, validate bool, topics ...kmsg.CreateTopicsRequestTopic) []kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics, req.ValidateOnly, req.TimeoutMillis = topics, validate, 10000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != len(topics) {
		t.Fatalf("%d topics answered, %d asked", len(resp.Topics), len(topics))
	}
	return resp.Topics
}

func createPartitionsReq(name string, count int32, assign ...[]int32) kmsg.CreatePartitionsRequestTopic {
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = name, count
	for _, rs := range assign {
		rt.Assignment = append(rt.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: rs})
	}
	return rt
}

func createPartitionsRaw(t *testing.T, ctx context.Context, cl *kgo.Client, validate bool, rt kmsg.CreatePartitionsRequestTopic) kmsg.CreatePartitionsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Topics, req.ValidateOnly, req.TimeoutMillis = []kmsg.CreatePartitionsRequestTopic{rt}, validate, 10000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0]
}

// waitView waits until node i's applied metadata satisfies ok and returns it.
func (tc *testCluster) waitView(i int, what string, ok func(*ctrl.State) bool) *ctrl.State {
	tc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, _ := tc.nodes[i].cluster.currentView()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("node %d: %s", i+1, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Explicit replica assignments in a cluster, through CreateTopics and
// CreatePartitions as kadm/kafka-topics send them: the replicas are the
// ones asked for (first = leader), Kafka's validation errors, and a fenced
// broker allowed as a replica outside the ISR until it comes back.
func TestClusterAssignCreateTopics(t *testing.T) {
	tc := startCluster(t, 3, nil)
	tc.waitBrokers(3)
	ctx := testCtx(t)
	cl := tc.client()
	code := func(c int16) error { return kerr.ErrorForCode(c) }

	got := createTopicsRaw(t, ctx, cl, false, createTopicsReq("as", -1, -1, []int32{2, 3}, []int32{3, 1}, []int32{1, 2}))
	if got[0].ErrorCode != 0 || got[0].NumPartitions != 3 || got[0].ReplicationFactor != 2 {
		t.Fatalf("create with assignment: %v %v, %d partitions, RF %d", code(got[0].ErrorCode), got[0].ErrorMessage,
			got[0].NumPartitions, got[0].ReplicationFactor)
	}
	want := [][]int32{{2, 3}, {3, 1}, {1, 2}}
	checkAssigned := func(topic string, want [][]int32) {
		t.Helper()
		for i := range tc.nodes {
			tc.waitView(i, "topic "+topic+" as assigned", func(s *ctrl.State) bool {
				ct := s.Topics[topic]
				if ct == nil || len(ct.Partitions) != len(want) {
					return false
				}
				for pi, p := range ct.Partitions {
					if !slices.Equal(p.Replicas, want[pi]) || p.Leader != want[pi][0] || len(p.ISR) != len(want[pi]) {
						return false
					}
				}
				return true
			})
		}
	}
	checkAssigned("as", want)

	f := func(what string, validate bool, rt kmsg.CreateTopicsRequestTopic, want *kerr.Error) {
		t.Helper()
		got := createTopicsRaw(t, ctx, cl, validate, rt)[0]
		if got.ErrorCode != want.Code || got.ErrorMessage == nil {
			t.Errorf("%s: %v (%v), want %v", what, code(got.ErrorCode), got.ErrorMessage, want)
		}
	}
	ira := kerr.InvalidReplicaAssignment
	f("unknown broker", false, createTopicsReq("x1", -1, -1, []int32{1, 9}), ira)
	f("negative broker", false, createTopicsReq("x1", -1, -1, []int32{-1}), ira)
	f("broker twice", false, createTopicsReq("x1", -1, -1, []int32{1, 1}), ira)
	f("lengths differ", false, createTopicsReq("x1", -1, -1, []int32{1, 2}, []int32{3}), ira)
	f("no replicas", false, createTopicsReq("x1", -1, -1, []int32{}), ira)
	gap := createTopicsReq("x1", -1, -1, []int32{1}, []int32{2})
	gap.ReplicaAssignment[1].Partition = 2
	f("partitions 0 and 2", false, gap, ira)
	twice := createTopicsReq("x1", -1, -1, []int32{1}, []int32{2})
	twice.ReplicaAssignment[1].Partition = 0
	f("partition 0 twice", false, twice, ira)
	f("with a partition count", false, createTopicsReq("x1", 1, -1, []int32{1}), kerr.InvalidRequest)
	f("with a replication factor", false, createTopicsReq("x1", -1, 1, []int32{1}), kerr.InvalidRequest)
	f("validate only, unknown broker", true, createTopicsReq("x1", -1, -1, []int32{1, 9}), ira)
	f("exists", false, createTopicsReq("as", -1, -1, []int32{1}), kerr.TopicAlreadyExists)
	if got := createTopicsRaw(t, ctx, cl, true, createTopicsReq("vo", -1, -1, []int32{1, 2}))[0]; got.ErrorCode != 0 {
		t.Errorf("validate only: %v %v", code(got.ErrorCode), got.ErrorMessage)
	}

	// CreatePartitions with an assignment for the new partitions.
	if got := createPartitionsRaw(t, ctx, cl, false, createPartitionsReq("as", 5, []int32{1, 3}, []int32{2, 1})); got.ErrorCode != 0 {
		t.Fatalf("create partitions: %v %v", code(got.ErrorCode), got.ErrorMessage)
	}
	want = append(want, []int32{1, 3}, []int32{2, 1})
	checkAssigned("as", want)
	g := func(what string, validate bool, rt kmsg.CreatePartitionsRequestTopic, want *kerr.Error) {
		t.Helper()
		got := createPartitionsRaw(t, ctx, cl, validate, rt)
		if got.ErrorCode != want.Code || got.ErrorMessage == nil {
			t.Errorf("%s: %v (%v), want %v", what, code(got.ErrorCode), got.ErrorMessage, want)
		}
	}
	g("too few assignments", false, createPartitionsReq("as", 7, []int32{1, 2}), ira)
	g("replication factor differs", false, createPartitionsReq("as", 6, []int32{1}), ira)
	g("unknown broker", false, createPartitionsReq("as", 6, []int32{1, 7}), ira)
	g("broker twice", false, createPartitionsReq("as", 6, []int32{2, 2}), ira)
	g("count not above", false, createPartitionsReq("as", 5, []int32{1, 2}), kerr.InvalidPartitions)
	g("validate only, bad", true, createPartitionsReq("as", 6, []int32{3, 3}), ira)
	if got := createPartitionsRaw(t, ctx, cl, true, createPartitionsReq("as", 6, []int32{3, 2})); got.ErrorCode != 0 {
		t.Errorf("validate only: %v %v", code(got.ErrorCode), got.ErrorMessage)
	}
	time.Sleep(100 * time.Millisecond)
	for i := range tc.nodes {
		s, _ := tc.nodes[i].cluster.currentView()
		if s.Topics["vo"] != nil || len(s.Topics["as"].Partitions) != 5 {
			t.Fatalf("node %d: validate-only requests changed the metadata", i+1)
		}
	}

	// Every assigned replica, and only those, holds the records (acks=all).
	prod := tc.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for pi := range want {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "as", Partition: int32(pi), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce to as-%d: %v", pi, err)
		}
	}
	for pi, rs := range want {
		for i, n := range tc.nodes {
			p := n.reg.partition("as", int32(pi))
			has := p != nil && p.getLog() != nil
			if has != slices.Contains(rs, int32(i+1)) {
				t.Fatalf("node %d holds a replica of as-%d: %v; replicas %v", i+1, pi, has, rs)
			}
			if has && p.getLog().Offsets().End != 1 {
				t.Fatalf("node %d: as-%d has LEO %d after an acks=all produce, want 1", i+1, pi, p.getLog().Offsets().End)
			}
		}
	}

	// A fenced broker may be named (it starts outside the ISR); all fenced is refused.
	tc.stop(2)
	tc.waitView(0, "broker 3 fenced", func(s *ctrl.State) bool { return !s.Live(3) })
	if got := createTopicsRaw(t, ctx, cl, false, createTopicsReq("fz", -1, -1, []int32{3, 1}))[0]; got.ErrorCode != 0 {
		t.Fatalf("assignment naming a fenced broker: %v %v", code(got.ErrorCode), got.ErrorMessage)
	}
	s := tc.waitView(0, "topic fz", func(s *ctrl.State) bool { return s.Topics["fz"] != nil })
	if p := s.Topics["fz"].Partitions[0]; !slices.Equal(p.Replicas, []int32{3, 1}) || p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("fz-0: %+v, want replicas [3 1], leader 1, ISR [1]", p)
	}
	f("every replica fenced", false, createTopicsReq("x2", -1, -1, []int32{3}), ira)
	tc.restart(2)
	tc.waitView(0, "broker 3 back in fz-0's ISR", func(s *ctrl.State) bool {
		return len(s.Topics["fz"].Partitions[0].ISR) == 2
	})
}

// Standalone, an explicit assignment may only name this broker.
func TestStandaloneAssignCreateTopics(t *testing.T) {
	n := startNode(t, "", nil)
	ctx := testCtx(t)
	cl := newClient(t, n)
	me := n.cfg.NodeID
	got := createTopicsRaw(t, ctx, cl, false, createTopicsReq("sa", -1, -1, []int32{me}, []int32{me}),
		createTopicsReq("sb", -1, -1, []int32{me + 1}), createTopicsReq("sc", -1, -1, []int32{me, me + 1}))
	if got[0].ErrorCode != 0 || got[0].NumPartitions != 2 || got[0].ReplicationFactor != 1 {
		t.Fatalf("own broker: %v %v %d partitions RF %d", kerr.ErrorForCode(got[0].ErrorCode), got[0].ErrorMessage,
			got[0].NumPartitions, got[0].ReplicationFactor)
	}
	for _, r := range got[1:] {
		if r.ErrorCode != kerr.InvalidReplicaAssignment.Code || r.ErrorMessage == nil {
			t.Errorf("%s: %v (%v), want INVALID_REPLICA_ASSIGNMENT", r.Topic, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
	}
	if tp := n.reg.get("sa"); tp == nil || len(n.reg.partitions(tp)) != 2 {
		t.Fatal("topic sa not created with 2 partitions")
	}
	if n.reg.get("sb") != nil || n.reg.get("sc") != nil {
		t.Fatal("a refused topic was created")
	}
}
