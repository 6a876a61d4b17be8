package node

import (
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ctrl"
)

// TestClusterReplicationThrottle: a reassignment copying ~8 MB to a new
// replica under follower.replication.throttled.rate=2 MB/s (cluster-wide
// default) and follower.replication.throttled.replicas=* takes at least
// 0.7 * 8/2 s and completes; with the throttle removed a second copy of the
// same data is fast. Along the way the configs' validation and describe
// answers are checked through kadm.
func TestClusterReplicationThrottle(t *testing.T) {
	testReplicationThrottle(t, followerThrottledRate, followerThrottledReplicas)
}

// TestClusterReplicationThrottleLeader: the same with the leader's side,
// leader.replication.throttled.rate and leader.replication.throttled.replicas:
// the leader leaves the partition out of its fetch answers while over quota.
func TestClusterReplicationThrottleLeader(t *testing.T) {
	testReplicationThrottle(t, leaderThrottledRate, leaderThrottledReplicas)
}

func testReplicationThrottle(t *testing.T, rateKey, replicasKey string) {
	tc := startCluster(t, 3, nil)
	tc.waitBrokers(3)
	ctx := testCtx(t)
	adm := kadm.NewClient(tc.client())
	const topic = "thr"
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	view := func(i int) (ctrl.Partition, bool) {
		s, _ := tc.nodes[i].cluster.currentView()
		if tp := s.Topics[topic]; tp != nil {
			return tp.Partitions[0], true
		}
		return ctrl.Partition{}, false
	}
	waitAll := func(what string, limit time.Duration, ok func(ctrl.Partition) bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for i := range tc.nodes {
			for {
				p, found := view(i)
				if found && ok(p) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: node %d sees %+v", what, i+1, p)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	waitAll("topic not created everywhere", 10*time.Second, func(p ctrl.Partition) bool { return len(p.ISR) == 1 })
	p0, _ := view(0)
	old := p0.Replicas[0]

	// ~8 MB of incompressible records.
	const recSize, records = 64 << 10, 128
	const total = recSize * records
	prod := tc.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for range records {
		v := make([]byte, recSize)
		_, _ = rand.Read(v)
		prod.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Validation: a bad list, a bad rate, a static broker key.
	bad, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: replicasKey, Value: ptr("0:x")}}, topic)
	if err != nil || len(bad) != 1 || !errors.Is(bad[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bad throttled replicas list: %v %+v", err, bad)
	}
	badB, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: rateKey, Value: ptr("-5")}})
	if err != nil || len(badB) != 1 || !errors.Is(badB[0].Err, kerr.InvalidConfig) {
		t.Fatalf("negative rate: %v %+v", err, badB)
	}
	badB, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: rateKey, Value: ptr("1")},
		{Name: "num.partitions", Value: ptr("3")}})
	if err != nil || len(badB) != 1 || !errors.Is(badB[0].Err, kerr.InvalidRequest) {
		t.Fatalf("static key with a rate: %v %+v", err, badB)
	}

	// The throttle: 2 MB/s cluster-wide, every replica of the topic.
	const rate = 2_000_000
	setB, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: rateKey, Value: ptr("2000000")}})
	if err != nil || len(setB) != 1 || setB[0].Err != nil {
		t.Fatalf("set rate: %v %+v", err, setB)
	}
	setT, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: replicasKey, Value: ptr("*")}}, topic)
	if err != nil || len(setT) != 1 || setT[0].Err != nil {
		t.Fatalf("set throttled replicas: %v %+v", err, setT)
	}
	var added int32
	for id := int32(1); id <= 3 && added == 0; id++ {
		if id != old {
			added = id
		}
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, added)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe broker %d: %v %+v", added, err, rcs)
	}
	found := false
	for _, c := range rcs[0].Configs {
		if c.Key == rateKey {
			found = true
			if c.Value == nil || *c.Value != "2000000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
				t.Errorf("described %s = %v from %v", c.Key, c.MaybeValue(), c.Source)
			}
		}
	}
	if !found {
		t.Errorf("broker %d does not describe %s", added, rateKey)
	}

	reassign := func(target []int32) time.Duration {
		t.Helper()
		start := time.Now()
		var req kadm.AlterPartitionAssignmentsReq
		req.Assign(topic, 0, target)
		res, err := adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if r := res[topic][0]; r.Err != nil {
			t.Fatalf("reassign to %v: %v (%s)", target, r.Err, r.ErrMessage)
		}
		waitAll("reassignment did not complete", 20*time.Second, func(p ctrl.Partition) bool {
			return slices.Equal(p.Replicas, target) && !p.Reassigning() && len(p.ISR) == len(target)
		})
		return time.Since(start)
	}
	throttled := reassign([]int32{old, added})
	want := time.Duration(0.7 * float64(total) / rate * float64(time.Second))
	t.Logf("throttled copy of %d bytes at %d B/s: %v (at least %v)", total, rate, throttled, want)
	if throttled < want {
		t.Errorf("throttled copy took %v, want at least %v", throttled, want)
	}

	// Remove the throttle; copying the same data to the third broker is fast.
	delB, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: rateKey}})
	if err != nil || len(delB) != 1 || delB[0].Err != nil {
		t.Fatalf("delete rate: %v %+v", err, delB)
	}
	delT, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: replicasKey}}, topic)
	if err != nil || len(delT) != 1 || delT[0].Err != nil {
		t.Fatalf("delete throttled replicas: %v %+v", err, delT)
	}
	var third int32
	for id := int32(1); id <= 3; id++ {
		if id != old && id != added {
			third = id
		}
	}
	free := reassign([]int32{old, added, third})
	t.Logf("unthrottled copy: %v", free)
	if free > want/2 {
		t.Errorf("unthrottled copy took %v, want under %v", free, want/2)
	}
}
