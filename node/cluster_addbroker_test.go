package node

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Adding a broker, as Kafka does it: a new broker-only node registers and is
// listed, but no existing replica moves to it by itself; an operator's
// reassignment (kadm AlterPartitionAssignments) then copies a partition to it
// and it serves as that partition's leader.
func TestClusterAddBroker(t *testing.T) {
	tc := startCluster(t, 3, nil)
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, "grow"); err != nil {
		t.Fatal(err)
	}
	prod := tc.client(kgo.DefaultProduceTopic("grow"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const total = 300
	for i := range total {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 3), Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	cfg := tc.cfgs[0]
	cfg.NodeID = 4
	cfg.Listen = "127.0.0.1:" + strconv.Itoa(reservePorts(t, 1)[0])
	cfg.DataDir = t.TempDir()
	cfg.Logger = testLogger().With("node", 4)
	cluster := *cfg.Cluster
	cluster.Controller = false // the voters stay 1-3
	cfg.Cluster = &cluster
	tc.cfgs = append(tc.cfgs, cfg)
	tc.dirs = append(tc.dirs, cfg.DataDir)
	tc.nodes = append(tc.nodes, nil)
	tc.restart(3)
	tc.waitBrokers(4)

	// No automatic moves: after a few heartbeats the new broker still holds
	// nothing of the old topic.
	time.Sleep(time.Second)
	s, _ := tc.nodes[0].cluster.currentView()
	for i, p := range s.Topics["grow"].Partitions {
		for _, r := range p.Replicas {
			if r == 4 {
				t.Fatalf("grow[%d] moved to the new broker by itself: replicas %v", i, p.Replicas)
			}
		}
	}

	// Move partition 0 to brokers 4, 1, 2 (4 preferred).
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("grow", 0, []int32{4, 1, 2})
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range res {
		for _, p := range ps {
			if p.Err != nil {
				t.Fatalf("reassign grow[%d]: %v", p.Partition, p.Err)
			}
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, _ := tc.nodes[3].cluster.currentView()
		p := s.Topics["grow"].Partitions[0]
		done := fmt.Sprint(p.Replicas) == "[4 1 2]" && len(p.AddingReplicas) == 0 && len(p.RemovingReplicas) == 0 && len(p.ISR) == 3
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reassignment of grow[0] to [4 1 2] did not complete: %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Make the new broker lead it (its preferred replica) and read from it.
	if _, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"grow": {0: {}}}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		s, _ := tc.nodes[3].cluster.currentView()
		if s.Topics["grow"].Partitions[0].Leader == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new broker did not become grow[0]'s leader")
		}
		time.Sleep(50 * time.Millisecond)
	}
	p := tc.nodes[3].reg.partition("grow", 0)
	old := tc.nodes[0].reg.partition("grow", 0)
	if p == nil || p.getLog() == nil || old == nil || old.getLog() == nil {
		t.Fatal("grow[0] has no replica on broker 4 or broker 1")
	}
	if got, want := p.getLog().Offsets().End, old.getLog().Offsets().End; got != want || got == 0 {
		t.Fatalf("broker 4's copy of grow[0] ends at %d, broker 1's at %d", got, want)
	}
	cons := tc.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"grow": {0: kgo.NewOffset().AtStart()}}))
	got := 0
	for int64(got) < p.getLog().Offsets().End {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
}
