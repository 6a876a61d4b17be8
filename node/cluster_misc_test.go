package node

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicemq/sluice/ctrl"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/sluicemq/sluice/repl"
	"github.com/sluicemq/sluice/segstore"
)

// waitFor polls ok every 20 ms for up to 30 s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A min.insync.replicas change (IncrementalAlterConfigs) reaches the live
// leader without an election: above the ISR size acks=all is refused with
// NOT_ENOUGH_REPLICAS, and back at 2 it succeeds, in one leader epoch.
func TestClusterMinIsrChangeWithoutElection(t *testing.T) {
	tc := startCluster(t, 3, nil)
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "mi"); err != nil {
		t.Fatal(err)
	}
	// Few retries, and metadata refreshes between them not held back 5 s.
	prod := tc.client(kgo.DefaultProduceTopic("mi"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(2),
		kgo.MetadataMinAge(50*time.Millisecond))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := tc.waitView(0, "mi-0 with a full ISR", func(s *ctrl.State) bool {
		return s.Topics["mi"] != nil && len(s.Topics["mi"].Partitions[0].ISR) == 3
	})
	before := s.Topics["mi"].Partitions[0]
	leader := func() *repl.Leader {
		return tc.nodes[before.Leader-1].reg.partition("mi", 0).ldr.Load()
	}
	setMin := func(v string) {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: &v}}, "mi")
		if err != nil || rs[0].Err != nil {
			t.Fatalf("set min.insync.replicas=%s: %v %+v", v, err, rs)
		}
	}

	setMin("4")
	waitFor(t, "the leader to apply min.insync.replicas=4", func() bool { return leader().CheckAppend(-1) != nil })
	err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("b")}).FirstErr()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all under min.insync.replicas=4 with 3 replicas: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	setMin("2")
	waitFor(t, "the leader to apply min.insync.replicas=2", func() bool { return leader().CheckAppend(-1) == nil })
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("c")}).FirstErr(); err != nil {
		t.Fatalf("acks=all after min.insync.replicas=2: %v", err)
	}
	for i := range tc.nodes {
		v, _ := tc.nodes[i].cluster.currentView()
		p := v.Topics["mi"].Partitions[0]
		if p.Leader != before.Leader || p.LeaderEpoch != before.LeaderEpoch {
			t.Fatalf("node %d: leader %d epoch %d, was %d epoch %d: the change took an election",
				i+1, p.Leader, p.LeaderEpoch, before.Leader, before.LeaderEpoch)
		}
	}
	if end := tc.nodes[before.Leader-1].reg.partition("mi", 0).getLog().Offsets().End; end != 2 {
		t.Fatalf("leader's LEO %d, want 2 (the refused record must not be written)", end)
	}
}

// Each broker writes its replicas' high watermarks to
// replication-offset-checkpoint periodically and at shutdown, and a
// restarted broker starts its replicas there: alone (no quorum, no leader
// to fetch from) its replicas report the committed HW, not the log start.
func TestClusterCheckpointHWSurvivesRestart(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.Cluster.HWCheckpointInterval = 100 * time.Millisecond })
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, "hw"); err != nil {
		t.Fatal(err)
	}
	prod := tc.client(kgo.DefaultProduceTopic("hw"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const perPart = 20
	for pi := int32(0); pi < 3; pi++ {
		for range perPart {
			if err := prod.ProduceSync(ctx, &kgo.Record{Partition: pi, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkpointed := func(i int) map[segstore.TopicPartition]int64 {
		m, err := segstore.ReadOffsetCheckpoint(vfs.OS, filepath.Join(tc.dirs[i], hwCheckpointFile))
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		return m
	}
	allAt := func(m map[segstore.TopicPartition]int64) bool {
		for pi := int32(0); pi < 3; pi++ {
			if m[segstore.TopicPartition{Topic: "hw", Partition: pi}] != perPart {
				return false
			}
		}
		return true
	}
	// Periodically, while running.
	for i := range tc.nodes {
		waitFor(t, "a periodic checkpoint at the committed HW", func() bool { return allAt(checkpointed(i)) })
	}
	for i := range tc.nodes {
		tc.stop(i)
	}
	for i := range tc.nodes { // and at shutdown
		if m := checkpointed(i); !allAt(m) || len(m) != 3 {
			t.Fatalf("node %d's checkpoint after shutdown: %v", i+1, m)
		}
	}

	tc.restart(0)
	n := tc.nodes[0]
	waitFor(t, "node 1's replicas to start at the checkpointed HW", func() bool {
		for pi := int32(0); pi < 3; pi++ {
			p := n.reg.partition("hw", pi)
			if p == nil || p.getLog() == nil || p.hw.Load() != perPart {
				return false
			}
		}
		return true
	})
	// A checkpoint written now keeps the values (nothing fetched since).
	if err := n.hwck.write(n); err != nil {
		t.Fatal(err)
	}
	if m := checkpointed(0); !allAt(m) {
		t.Fatalf("checkpoint rewritten after the restart: %v", m)
	}
}

// The broker key unclean.leader.election.enable is the controller's default:
// a partition whose only in-sync replica died gets its live out-of-sync
// replica as leader when that replica's broker returns. Five nodes, so the
// quorum survives two being down.
func TestClusterUncleanBrokerKey(t *testing.T) {
	tc := startCluster(t, 5, func(c *Config) { c.Cluster.UncleanLeaderElection = true })
	tc.waitBrokers(5)
	ctx := testCtx(t)
	cl := tc.client()
	adm := kadm.NewClient(cl)
	brokerCfg, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := brokerCfg.On("1", nil); err != nil || !hasConfig(c, "unclean.leader.election.enable", "true") {
		t.Fatalf("DescribeConfigs of broker 1: %+v %v", c, err)
	}

	tc.stop(3) // broker 4: fenced, so "u" starts with ISR [5]
	tc.waitView(0, "broker 4 fenced", func(s *ctrl.State) bool { return !s.Live(4) })
	if got := createTopicsRaw(t, ctx, cl, false, createTopicsReq("u", -1, -1, []int32{5, 4}))[0]; got.ErrorCode != 0 {
		t.Fatalf("create u: %v %v", kerr.ErrorForCode(got.ErrorCode), got.ErrorMessage)
	}
	tc.waitView(0, "u-0 led by 5 alone", func(s *ctrl.State) bool {
		u := s.Topics["u"]
		return u != nil && u.Partitions[0].Leader == 5 && len(u.Partitions[0].ISR) == 1
	})
	tc.stop(4) // broker 5, the only in-sync replica: u-0 goes offline
	tc.waitView(0, "u-0 offline", func(s *ctrl.State) bool { return s.Topics["u"].Partitions[0].Leader == ctrl.NoLeader })
	tc.restart(3)
	s := tc.waitView(0, "broker 4 elected uncleanly", func(s *ctrl.State) bool { return s.Topics["u"].Partitions[0].Leader == 4 })
	if p := s.Topics["u"].Partitions[0]; len(p.ISR) != 1 || p.ISR[0] != 4 {
		t.Fatalf("u-0 after the unclean election: %+v", p)
	}
}

func hasConfig(rc kadm.ResourceConfig, name, value string) bool {
	for _, c := range rc.Configs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}
