package repl

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluicemq/sluice/segstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultLagTimeMax is replica.lag.time.max.ms.
const DefaultLagTimeMax = 30 * time.Second

// Clock is the time source; tests step a fake one.
type Clock interface{ Now() time.Time }

// LeaderLog is what the leader reads of its local log. *segstore.Log
// satisfies it.
type LeaderLog interface {
	Offsets() segstore.Offsets
	EndOffsetForEpoch(epoch int32) (int32, int64)
}

// PartitionState is the controller's committed view of a partition.
type PartitionState struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32 // assignment order
	ISR            []int32
	// Adding are the replicas a reassignment is adding (in Replicas too):
	// until they join the ISR they do not count as missing from it.
	Adding []int32
}

// AlterRequest is an AlterPartition proposal for one partition.
type AlterRequest struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32 // the one the proposal is based on
	ISR            []int32
}

// AlterResponse is the controller's answer to an AlterRequest: on success
// the ISR and partition epoch it committed; Err otherwise (kerr errors).
type AlterResponse struct {
	LeaderEpoch    int32 // of the request it answers
	PartitionEpoch int32
	ISR            []int32
	Err            error
}

// LeaderConfig configures a Leader.
type LeaderConfig struct {
	BrokerID   int32
	LagTimeMax time.Duration // replica.lag.time.max.ms; default DefaultLagTimeMax
	MinISR     int           // min.insync.replicas; default 1
	Clock      Clock
	// AlterPartition sends a proposal to the controller. It is called
	// without the Leader's lock and must not block; the answer comes back
	// through Leader.AlterPartitionDone.
	AlterPartition func(AlterRequest)
}

// Leader is the leader replica's replication state for one partition: the
// followers' LEOs, the ISR, the high watermark, and the acks=all waiters.
// It is created when the broker becomes leader for an epoch and dropped
// (Resign) when it stops being leader.
//
// Concurrency: every method is safe for concurrent use (one mutex). Callbacks
// (AlterPartition, acks=all completions) run on the calling goroutine after
// the lock is released, so they may call back into the Leader.
type Leader struct {
	cfg LeaderConfig
	log LeaderLog

	mu             sync.Mutex
	epoch          int32
	partitionEpoch int32
	replicas       []int32
	adding         int // how many of replicas a reassignment is adding
	isr            isrState
	followers      map[int32]*follower
	hw             int64
	// epochStart is the leader's LEO when it took this epoch: a follower must
	// reach it before joining the ISR (it then holds this epoch's history).
	epochStart int64
	waiters    []waiter
	resigned   bool
}

// NewLeader starts leading st.LeaderEpoch. hw is the broker's high watermark
// for the partition (as a follower, or from replication-offset-checkpoint);
// it is capped at the local LEO. Followers' LEOs are unknown until they fetch,
// so the HW does not move before every ISR member fetched in this epoch.
func NewLeader(cfg LeaderConfig, log LeaderLog, st PartitionState, hw int64) *Leader {
	if cfg.LagTimeMax <= 0 {
		cfg.LagTimeMax = DefaultLagTimeMax
	}
	cfg.MinISR = max(cfg.MinISR, 1)
	leo := log.Offsets().End
	l := &Leader{cfg: cfg, log: log, epoch: st.LeaderEpoch, hw: min(max(hw, log.Offsets().Start), leo), epochStart: leo,
		followers: map[int32]*follower{}}
	l.applyStateLocked(st)
	l.advanceLocked() // a lone ISR member: the HW is the LEO; no waiters yet
	return l
}

// applyStateLocked takes the controller's replicas and ISR; a pending change
// is over (the metadata supersedes it).
func (l *Leader) applyStateLocked(st PartitionState) {
	l.partitionEpoch = st.PartitionEpoch
	l.replicas = slices.Clone(st.Replicas)
	l.adding = len(st.Adding)
	l.isr = isrState{committed: slices.Clone(st.ISR)}
	now := l.cfg.Clock.Now()
	for _, id := range l.replicas {
		if id != l.cfg.BrokerID && l.followers[id] == nil {
			// A new follower counts as caught up now (Kafka does likewise), so
			// it has lag.time.max to fetch before it is dropped from the ISR.
			l.followers[id] = &follower{leo: -1, lastCaughtUp: now, lastFetchLeaderLEO: -1}
		}
	}
}

// UpdateState applies committed metadata for the same leader epoch: a newer
// partition epoch (ISR or replica changes, the controller's or this
// leader's AlterPartition) replaces the ISR and ends a pending change. It
// returns false if st is for another epoch: the caller must then build a new
// Leader or become a follower. Safe for concurrent use.
func (l *Leader) UpdateState(st PartitionState) bool {
	l.mu.Lock()
	if st.LeaderEpoch != l.epoch || st.Leader != l.cfg.BrokerID {
		l.mu.Unlock()
		return false
	}
	// Only a newer partition epoch replaces the ISR: metadata at the same
	// epoch says nothing about a proposal in flight, and dropping it here
	// would let the HW pass a follower the controller may still add (found
	// by the randomized simulation).
	if st.PartitionEpoch > l.partitionEpoch {
		l.applyStateLocked(st)
	}
	fire := l.advanceLocked()
	l.mu.Unlock()
	fire.run()
	return true
}

// SetMinISR applies a changed min.insync.replicas (default 1 for n < 1) to
// this leadership: the next CheckAppend and acks=all completion use it, with
// no new leader epoch needed. Safe for concurrent use.
func (l *Leader) SetMinISR(n int) {
	l.mu.Lock()
	l.cfg.MinISR = max(n, 1)
	l.mu.Unlock()
}

// Epoch is the leader epoch. Safe for concurrent use.
func (l *Leader) Epoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// HighWatermark is the offset below which records are committed and visible
// to consumers. It never decreases. Safe for concurrent use.
func (l *Leader) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hw
}

// ISR returns the committed ISR and whether a change is in flight. Safe for
// concurrent use.
func (l *Leader) ISR() (isr []int32, pending bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.isr.committed), l.isr.pending()
}

// UnderReplicated reports ISR < replicas and UnderMinISR ISR <
// min.insync.replicas (the metrics). As in Kafka, replicas a reassignment is
// still adding do not count: a partition moving to new brokers is not
// under-replicated for it. Safe for concurrent use.
func (l *Leader) UnderReplicated() (under, underMin bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.isr.committed) < len(l.replicas)-l.adding, len(l.isr.committed) < l.cfg.MinISR
}

// CheckAppend is asked before a produce is appended: acks=all with fewer
// committed ISR members than min.insync.replicas gets NOT_ENOUGH_REPLICAS
// and nothing is written. Safe for concurrent use.
func (l *Leader) CheckAppend(acks int16) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.resigned {
		return kerr.NotLeaderForPartition
	}
	if acks == -1 && len(l.isr.committed) < l.cfg.MinISR {
		return fmt.Errorf("%w: ISR %v, min.insync.replicas %d", kerr.NotEnoughReplicas, l.isr.committed, l.cfg.MinISR)
	}
	return nil
}

// OnAppended is called after a local append completed (the LEO moved): with
// a lone ISR member the HW follows the LEO. Safe for concurrent use.
func (l *Leader) OnAppended() {
	l.mu.Lock()
	fire := l.advanceLocked()
	l.mu.Unlock()
	fire.run()
}

// advanceLocked moves the HW to the minimum LEO over the maximal ISR (the
// leader's own included), never backwards, and collects the acks=all
// waiters that are now done.
func (l *Leader) advanceLocked() effects {
	if l.resigned {
		return effects{}
	}
	hw := l.log.Offsets().End
	for _, id := range l.isr.maximal() {
		if id == l.cfg.BrokerID {
			continue
		}
		f := l.followers[id]
		if f == nil || f.leo < 0 {
			hw = -1 // not heard from in this epoch: hold the HW
			break
		}
		hw = min(hw, f.leo)
	}
	if hw > l.hw {
		l.hw = hw
	}
	return l.completeWaitersLocked()
}

// Resign ends this leadership (the broker becomes a follower or stops
// leading the partition): acks=all waiters fail with NOT_LEADER_OR_FOLLOWER
// and a pending ISR change is forgotten. Safe for concurrent use.
func (l *Leader) Resign() {
	l.mu.Lock()
	l.resigned = true
	l.isr.proposed = nil
	var fire effects
	for _, w := range l.waiters {
		fire.done = append(fire.done, doneCall{w.done, kerr.NotLeaderForPartition})
	}
	l.waiters = nil
	l.mu.Unlock()
	fire.run()
}

// effects are callbacks collected under the lock and run after it.
type effects struct {
	done  []doneCall
	alter *AlterRequest
	send  func(AlterRequest)
}

type doneCall struct {
	f   func(error)
	err error
}

func (e effects) run() {
	if e.alter != nil {
		e.send(*e.alter)
	}
	for _, d := range e.done {
		d.f(d.err)
	}
}
