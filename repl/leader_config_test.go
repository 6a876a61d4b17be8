package repl

import (
	"errors"
	"testing"

	"github.com/sluicemq/sluice/segstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

// A min.insync.replicas change reaches a live Leader (SetMinISR) without a new
// epoch: CheckAppend and acks=all completions use the new value at once.
func TestSetMinISRAppliesToLiveLeader(t *testing.T) {
	r := newLeaderRig(t, 2, []int32{1, 2, 3}, 10)
	check := func(want error) {
		t.Helper()
		if err := r.l.CheckAppend(-1); want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("CheckAppend(acks=all) = %v, want %v", err, want)
		}
	}
	check(nil)
	r.l.SetMinISR(4) // above the replication factor: every acks=all produce is refused
	check(kerr.NotEnoughReplicas)
	if err := r.l.CheckAppend(1); err != nil {
		t.Fatalf("acks=1 refused under min.insync.replicas 4: %v", err)
	}
	if _, underMin := r.l.UnderReplicated(); !underMin {
		t.Fatal("UnderMinISR false with ISR 3 < min.insync.replicas 4")
	}
	r.l.SetMinISR(2)
	check(nil)
	r.l.SetMinISR(0) // unset: Kafka's default 1
	check(nil)

	// A waiter admitted before the change completes against the new value.
	r.l.SetMinISR(2)
	r.fetch(2, 10)
	r.fetch(3, 10)
	r.log.end = 12
	r.l.OnAppended()
	var got error
	done := false
	r.l.WaitForAcks(11, 1<<40, func(err error) { got, done = err, true })
	r.l.SetMinISR(4)
	r.fetch(2, 12)
	r.fetch(3, 12)
	if !done || !errors.Is(got, kerr.NotEnoughReplicasAfterAppend) {
		t.Fatalf("acks=all waiter: done %v err %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", done, got)
	}
}

// The HW a Leader or Follower starts with (the broker's
// replication-offset-checkpoint after a restart) is kept, capped at the LEO,
// instead of starting at the log start.
func TestInitialHighWatermarkHonoured(t *testing.T) {
	f := func(start, leo, hw, wantLeader, wantFollower int64) {
		t.Helper()
		log := &memLeaderLog{start: start, end: leo, epochs: []segstore.EpochEntry{{Epoch: 0, StartOffset: start}}}
		l := NewLeader(LeaderConfig{BrokerID: 1, Clock: newFakeClock(), AlterPartition: func(AlterRequest) {}}, log,
			PartitionState{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}, hw)
		if got := l.HighWatermark(); got != wantLeader {
			t.Fatalf("leader: start %d LEO %d initial HW %d: HW %d, want %d", start, leo, hw, got, wantLeader)
		}
		fl := NewFollower(FollowerConfig{BrokerID: 2}, &memFollowerLog{memLeaderLog: log}, 1, 1, hw)
		if got := fl.HighWatermark(); got != wantFollower {
			t.Fatalf("follower: start %d LEO %d initial HW %d: HW %d, want %d", start, leo, hw, got, wantFollower)
		}
	}
	f(0, 10, 7, 7, 7)     // the checkpointed HW, not 0
	f(0, 10, 25, 10, 10)  // a checkpoint above the LEO (log lost its tail): the LEO
	f(5, 10, 0, 5, 0)     // no checkpoint: the leader starts at the log start
	f(5, 10, 8, 8, 8)     // within the log
	f(0, 0, 3, 0, 0)      // empty log
	f(20, 30, 30, 30, 30) // all of it committed
}

// memFollowerLog is a FollowerLog that only reports offsets.
type memFollowerLog struct{ *memLeaderLog }

func (m *memFollowerLog) TruncateTo(int64) error { return nil }
func (m *memFollowerLog) AppendReplica([]byte, func(segstore.AppendResult)) (int64, error) {
	return 0, errors.New("memFollowerLog: no appends")
}

// Replicas a reassignment is adding do not make a partition under-replicated
// (Kafka's replicationFactor = replicas - adding); a missing original does.
func TestUnderReplicatedIgnoresAddingReplicas(t *testing.T) {
	r := newLeaderRig(t, 2, []int32{1, 2, 3}, 10)
	if under, _ := r.l.UnderReplicated(); under {
		t.Fatal("full ISR reported under-replicated")
	}
	st := PartitionState{Leader: 1, LeaderEpoch: 3, PartitionEpoch: 11, Replicas: []int32{1, 2, 3, 4}, ISR: []int32{1, 2, 3},
		Adding: []int32{4}}
	if !r.l.UpdateState(st) {
		t.Fatal("UpdateState refused the same epoch")
	}
	if under, _ := r.l.UnderReplicated(); under {
		t.Fatal("under-replicated while only the adding replica 4 is out of the ISR")
	}
	st.PartitionEpoch, st.ISR = 12, []int32{1, 2}
	r.l.UpdateState(st)
	if under, _ := r.l.UnderReplicated(); !under {
		t.Fatal("not under-replicated with original replica 3 out of the ISR")
	}
	st.PartitionEpoch, st.ISR, st.Adding = 13, []int32{1, 2, 3}, nil // the reassignment is cancelled
	st.Replicas = []int32{1, 2, 3}
	r.l.UpdateState(st)
	if under, _ := r.l.UnderReplicated(); under {
		t.Fatal("under-replicated after the reassignment was cancelled")
	}
}
