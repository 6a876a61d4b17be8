package repl

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/segstore"
)

// FetchRequest is one partition of a follower's Fetch (replica id set).
type FetchRequest struct {
	ReplicaID          int32
	CurrentLeaderEpoch int32 // -1: not sent
	FetchOffset        int64 // the follower's LEO
	LastFetchedEpoch   int32 // epoch of the follower's last batch; -1: not sent
}

// EpochEnd is an OffsetForLeaderEpoch answer, or Fetch's DivergingEpoch: the
// largest epoch at or below the one asked for, and where it ended. (-1, -1):
// the leader knows no such epoch.
type EpochEnd struct {
	Epoch     int32
	EndOffset int64
}

// FetchDecision is what the leader answers a follower's fetch with. If Err
// is nil and Diverging is nil, the node reads records from the fetch offset
// up to the LEO (followers read past the HW) and sends them with
// HighWatermark and LogStartOffset.
type FetchDecision struct {
	Err            error
	Diverging      *EpochEnd
	HighWatermark  int64
	LogStartOffset int64
}

// HandleFetch validates a follower's fetch and learns from it: the epoch is
// checked (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), a follower whose last
// epoch ends earlier on the leader is told where it diverges, otherwise its
// LEO and caught-up time are updated, the ISR may grow (an AlterPartition is
// sent) and the HW may advance (acks=all waiters complete). Safe for
// concurrent use.
func (l *Leader) HandleFetch(req FetchRequest) FetchDecision {
	l.mu.Lock()
	d, fire := l.handleFetchLocked(req)
	l.mu.Unlock()
	fire.run()
	return d
}

func (l *Leader) handleFetchLocked(req FetchRequest) (FetchDecision, effects) {
	switch {
	case l.resigned:
		return FetchDecision{Err: kerr.NotLeaderForPartition}, effects{}
	case req.CurrentLeaderEpoch >= 0 && req.CurrentLeaderEpoch < l.epoch:
		return FetchDecision{Err: fmt.Errorf("%w: request epoch %d, leader epoch %d", kerr.FencedLeaderEpoch, req.CurrentLeaderEpoch, l.epoch)}, effects{}
	case req.CurrentLeaderEpoch > l.epoch:
		return FetchDecision{Err: fmt.Errorf("%w: request epoch %d, leader epoch %d", kerr.UnknownLeaderEpoch, req.CurrentLeaderEpoch, l.epoch)}, effects{}
	}
	f := l.followers[req.ReplicaID]
	if f == nil {
		return FetchDecision{Err: fmt.Errorf("%w: broker %d is not a replica (replicas %v)", kerr.NotLeaderForPartition, req.ReplicaID, l.replicas)}, effects{}
	}
	offs := l.log.Offsets()
	d := FetchDecision{HighWatermark: l.hw, LogStartOffset: offs.Start}
	if req.LastFetchedEpoch >= 0 {
		ep, end := l.endOffsetForEpochLocked(req.LastFetchedEpoch)
		if ep < req.LastFetchedEpoch || end < req.FetchOffset {
			// The follower's log holds batches the leader does not have (or
			// not in that epoch): it must truncate before it fetches. Its LEO
			// is not learned from this fetch: that suffix may go.
			d.Diverging = &EpochEnd{Epoch: ep, EndOffset: end}
			return d, effects{}
		}
	}
	if req.FetchOffset < offs.Start || req.FetchOffset > offs.End {
		d.Err = fmt.Errorf("%w: fetch offset %d, leader holds [%d, %d)", kerr.OffsetOutOfRange, req.FetchOffset, offs.Start, offs.End)
		return d, effects{}
	}
	now := l.cfg.Clock.Now()
	f.noteFetch(req.FetchOffset, offs.End, now)
	fire := l.maybeExpandLocked(req.ReplicaID, f)
	adv := l.advanceLocked()
	fire.done = adv.done
	d.HighWatermark = l.hw
	return d, fire
}

// maybeExpandLocked proposes adding a follower to the ISR once it reached
// the HW and this epoch's start (Kafka's isFollowerInSync), unless a change
// is in flight.
func (l *Leader) maybeExpandLocked(id int32, f *follower) effects {
	if l.isr.pending() || slices.Contains(l.isr.committed, id) {
		return effects{}
	}
	if f.leo < l.hw || f.leo < l.epochStart {
		return effects{}
	}
	return l.proposeLocked(append(slices.Clone(l.isr.committed), id))
}

// Tick runs the periodic work: ISR shrink for followers that have not caught
// up within replica.lag.time.max.ms, and acks=all timeouts. Call it often
// (Kafka checks the ISR every lag.time.max/2; once a second is fine). Safe
// for concurrent use.
func (l *Leader) Tick() {
	l.mu.Lock()
	fire := l.maybeShrinkLocked()
	fire.done = append(fire.done, l.expireWaitersLocked()...)
	l.mu.Unlock()
	fire.run()
}

// maybeShrinkLocked proposes dropping the out-of-sync followers from the ISR.
func (l *Leader) maybeShrinkLocked() effects {
	if l.resigned || l.isr.pending() {
		return effects{}
	}
	leo := l.log.Offsets().End
	now := l.cfg.Clock.Now()
	var out []int32
	for _, id := range l.isr.committed {
		if f := l.followers[id]; id != l.cfg.BrokerID && (f == nil || !f.caughtUp(leo, now, l.cfg.LagTimeMax)) {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return effects{}
	}
	return l.proposeLocked(without(l.isr.committed, out))
}

func (l *Leader) proposeLocked(isr []int32) effects {
	l.isr.proposed = isr
	req := AlterRequest{Leader: l.cfg.BrokerID, LeaderEpoch: l.epoch, PartitionEpoch: l.partitionEpoch, ISR: slices.Clone(isr)}
	return effects{alter: &req, send: l.cfg.AlterPartition}
}

// AlterPartitionDone applies the controller's answer to the last proposal.
// On success the new ISR is committed and used (the HW may move, waiters
// may complete); on error the proposal is dropped and the next fetch or Tick
// proposes again. An answer for another epoch or with nothing pending is
// ignored. Safe for concurrent use.
func (l *Leader) AlterPartitionDone(r AlterResponse) {
	l.mu.Lock()
	if l.resigned || !l.isr.pending() || r.LeaderEpoch != l.epoch {
		l.mu.Unlock()
		return
	}
	l.isr.proposed = nil
	if r.Err == nil && r.PartitionEpoch > l.partitionEpoch {
		l.isr.committed = slices.Clone(r.ISR)
		l.partitionEpoch = r.PartitionEpoch
	}
	fire := l.advanceLocked()
	l.mu.Unlock()
	fire.run()
}

// EndOffsetForEpoch answers a follower's OffsetForLeaderEpoch for epoch,
// after checking its current leader epoch like a fetch (-1: not sent). Safe
// for concurrent use.
func (l *Leader) EndOffsetForEpoch(currentLeaderEpoch, epoch int32) (EpochEnd, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.resigned:
		return EpochEnd{-1, -1}, kerr.NotLeaderForPartition
	case currentLeaderEpoch >= 0 && currentLeaderEpoch < l.epoch:
		return EpochEnd{-1, -1}, fmt.Errorf("%w: request epoch %d, leader epoch %d", kerr.FencedLeaderEpoch, currentLeaderEpoch, l.epoch)
	case currentLeaderEpoch > l.epoch:
		return EpochEnd{-1, -1}, fmt.Errorf("%w: request epoch %d, leader epoch %d", kerr.UnknownLeaderEpoch, currentLeaderEpoch, l.epoch)
	}
	ep, end := l.endOffsetForEpochLocked(epoch)
	return EpochEnd{Epoch: ep, EndOffset: end}, nil
}

// endOffsetForEpochLocked answers as Kafka's leader epoch cache does once
// the leader has assigned its epoch (at election, before any batch of it):
// the current epoch starts at epochStart even while the log holds none of
// its batches, and an epoch older than every known one ends where the
// oldest known one starts (Kafka's (requested, next start) answer, so a
// follower holding only such older batches truncates to there).
func (l *Leader) endOffsetForEpochLocked(epoch int32) (int32, int64) {
	leo := l.log.Offsets().End
	if epoch >= l.epoch {
		if epoch > l.epoch {
			return -1, -1 // newer than this leader knows
		}
		return l.epoch, leo
	}
	el, ok := l.log.(interface{ Epochs() []segstore.EpochEntry })
	if !ok {
		return l.log.EndOffsetForEpoch(epoch)
	}
	entries := el.Epochs()
	if len(entries) == 0 || entries[len(entries)-1].Epoch < l.epoch {
		// The virtual entry of the current epoch, not written yet.
		entries = append(slices.Clone(entries), segstore.EpochEntry{Epoch: l.epoch, StartOffset: l.epochStart})
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Epoch <= epoch {
			if i == len(entries)-1 {
				return entries[i].Epoch, leo
			}
			return entries[i].Epoch, entries[i+1].StartOffset
		}
	}
	return epoch, entries[0].StartOffset
}
