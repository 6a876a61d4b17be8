package ctrl

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Election rules, as pure functions over a State. They compute ChangePartition records; they never mutate. The active controller proposes what they
// return, and Apply re-checks each against the partition epoch it was computed from, so a decision made on a state
// that moved on is rejected rather than applied stale.

// ElectLeader picks a leader: the first replica in assignment order (preferred replica first) that is in the ISR
// and live. If there is none and unclean is set, the first live replica outside the ISR leads and the ISR becomes
// just it (Kafka's unclean election: its log wins, whatever the others had). Otherwise NoLeader and the ISR is
// returned unchanged. isr is never modified.
func ElectLeader(replicas, isr []int32, live func(int32) bool, unclean bool) (leader int32, newISR []int32, wasUnclean bool) {
	for _, r := range replicas {
		if slices.Contains(isr, r) && live(r) {
			return r, isr, false
		}
	}
	if unclean {
		for _, r := range replicas {
			if live(r) {
				return r, []int32{r}, true
			}
		}
	}
	return NoLeader, isr, false
}

// liveExcept treats broker id as fenced whatever the state says: the view after fencing it.
func liveExcept(s *State, id int32) func(int32) bool {
	return func(b int32) bool { return b != id && s.Live(b) }
}

// liveWith treats broker id as unfenced: the view after unfencing it.
func liveWith(s *State, id int32) func(int32) bool {
	return func(b int32) bool { return b == id || s.Live(b) }
}

// forEachPartition visits every partition in a deterministic order (topics by name, partitions by number).
func forEachPartition(s *State, fn func(t *Topic, i int32, p *Partition)) {
	for _, name := range s.TopicNames() {
		t := s.Topics[name]
		for i := range t.Partitions {
			fn(t, int32(i), &t.Partitions[i])
		}
	}
}

func change(t *Topic, i int32, p *Partition, leader int32, isr []int32) (ChangePartition, bool) {
	if leader == p.Leader && slices.Equal(isr, p.ISR) {
		return ChangePartition{}, false
	}
	return ChangePartition{Topic: t.Name, ID: t.ID, Partition: i, PartitionEpoch: p.PartitionEpoch,
		Leader: leader, ISR: slices.Clone(isr)}, true
}

// FenceChanges computes what fencing broker id does to partitions: it leaves every ISR it is in, except that the
// last ISR member stays (KRaft without ELR: the ISR never empties, so the partition waits for that replica or for an
// unclean election), and every partition it led gets a new leader from the remaining live ISR (or an unclean one
// where the topic allows it), else NoLeader. Propose these before the FenceBroker record, in one Batch.
func FenceChanges(s *State, id int32) []ChangePartition {
	live := liveExcept(s, id)
	var out []ChangePartition
	forEachPartition(s, func(t *Topic, i int32, p *Partition) {
		if !slices.Contains(p.Replicas, id) {
			return
		}
		isr := p.ISR
		if slices.Contains(isr, id) && len(isr) > 1 {
			isr = slices.DeleteFunc(slices.Clone(isr), func(r int32) bool { return r == id })
		}
		leader := p.Leader
		if leader == id || leader == NoLeader {
			leader, isr, _ = ElectLeader(p.Replicas, isr, live, s.UncleanAllowed(t.Name))
		}
		if c, ok := change(t, i, p, leader, isr); ok {
			out = append(out, c)
		}
	})
	return out
}

// UnfenceChanges computes the elections that unfencing broker id makes possible: offline partitions it is a
// replica of get a leader (it, if it was the last ISR member). Propose these after the UnfenceBroker record.
func UnfenceChanges(s *State, id int32) []ChangePartition {
	return offlineChanges(s, liveWith(s, id), func(p *Partition) bool { return slices.Contains(p.Replicas, id) })
}

// OfflineChanges computes elections for every leaderless partition that now has an eligible leader, e.g. after
// unclean.leader.election.enable was turned on.
func OfflineChanges(s *State) []ChangePartition {
	return offlineChanges(s, s.Live, func(*Partition) bool { return true })
}

func offlineChanges(s *State, live func(int32) bool, want func(*Partition) bool) []ChangePartition {
	var out []ChangePartition
	forEachPartition(s, func(t *Topic, i int32, p *Partition) {
		if p.Leader != NoLeader || !want(p) {
			return
		}
		leader, isr, _ := ElectLeader(p.Replicas, p.ISR, live, s.UncleanAllowed(t.Name))
		if c, ok := change(t, i, p, leader, isr); ok {
			out = append(out, c)
		}
	})
	return out
}

// PreferredChanges computes preferred-leader elections: every partition whose first replica is live and in the
// ISR but not leading moves leadership to it. The ISR is unchanged.
func PreferredChanges(s *State) []ChangePartition {
	var out []ChangePartition
	forEachPartition(s, func(t *Topic, i int32, p *Partition) {
		pref := p.Replicas[0]
		if p.Leader == pref || !s.Live(pref) || !slices.Contains(p.ISR, pref) {
			return
		}
		if c, ok := change(t, i, p, pref, p.ISR); ok {
			out = append(out, c)
		}
	})
	return out
}

// AlterPartitionRequest is a partition leader's request to change its ISR (Kafka's AlterPartition).
type AlterPartitionRequest struct {
	BrokerID       int32
	BrokerEpoch    int64
	Topic          string
	TopicID        TopicID
	Partition      int32
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32
}

// ValidateAlterPartition checks an AlterPartition request against the state as Kafka's controller does and returns
// the ChangePartition to propose, or nil when the ISR is already as requested. Errors wrap the Kafka code to
// answer with: STALE_BROKER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID, INVALID_REQUEST (not the leader,
// ISR without the leader or with non-replicas), FENCED_LEADER_EPOCH (the leader epoch moved on),
// INVALID_UPDATE_VERSION (stale partition epoch), INELIGIBLE_REPLICA (adding a fenced broker).
func ValidateAlterPartition(s *State, req AlterPartitionRequest) (*ChangePartition, error) {
	if _, err := s.brokerAt(req.BrokerID, req.BrokerEpoch, "AlterPartition"); err != nil {
		return nil, err
	}
	t, err := s.topicAt(req.Topic, req.TopicID, "AlterPartition")
	if err != nil {
		return nil, err
	}
	if req.Partition < 0 || int(req.Partition) >= len(t.Partitions) {
		return nil, invalidKerr(kerr.UnknownTopicOrPartition, "AlterPartition: %s has no partition %d", req.Topic, req.Partition)
	}
	p := &t.Partitions[req.Partition]
	if req.LeaderEpoch != p.LeaderEpoch {
		return nil, invalidKerr(kerr.FencedLeaderEpoch, "AlterPartition %s-%d: leader epoch %d, current %d",
			req.Topic, req.Partition, req.LeaderEpoch, p.LeaderEpoch)
	}
	if req.BrokerID != p.Leader {
		return nil, invalidKerr(kerr.InvalidRequest, "AlterPartition %s-%d: broker %d is not the leader (%d)",
			req.Topic, req.Partition, req.BrokerID, p.Leader)
	}
	if req.PartitionEpoch != p.PartitionEpoch {
		return nil, invalidKerr(kerr.InvalidUpdateVersion, "AlterPartition %s-%d: partition epoch %d, current %d",
			req.Topic, req.Partition, req.PartitionEpoch, p.PartitionEpoch)
	}
	if err := s.checkPartition("AlterPartition "+req.Topic, p.Replicas, req.ISR, p.Leader); err != nil {
		return nil, err
	}
	for _, r := range req.ISR {
		if !slices.Contains(p.ISR, r) && !s.Live(r) {
			return nil, invalidKerr(kerr.IneligibleReplica, "AlterPartition %s-%d: replica %d is fenced and cannot join the ISR",
				req.Topic, req.Partition, r)
		}
	}
	c, ok := change(t, req.Partition, p, p.Leader, req.ISR)
	if !ok {
		return nil, nil
	}
	return &c, nil
}
