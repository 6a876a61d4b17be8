package ctrl

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition reassignments (KIP-455, as KRaft runs them) and broker unregistration: the record bodies and how Apply
// validates and applies them. The decisions are in reassign_decide.go, the controller operations in
// reassign_ops.go.
//
// A reassignment in progress is visible in the partition itself: Replicas is the target replicas followed by the
// replicas being removed, AddingReplicas are the target replicas that were not replicas before, RemovingReplicas
// the old replicas the target drops. Adding replicas start out of the ISR and fetch like any follower; once every
// one of them is in the ISR the active controller completes the reassignment with another ReassignPartition.

// ReassignPartition sets a partition's whole assignment: Replicas in order, the reassignment in progress (Adding
// and Removing, both empty when none is), the ISR and the leader. It starts, changes, completes and cancels
// reassignments. PartitionEpoch is the epoch it was computed from (as in ChangePartition): Apply rejects it unless
// it is still current, then bumps the partition epoch, and the leader epoch too when the leader changes. A
// reassignment never adds to the ISR (only a leader's AlterPartition does, once a replica caught up), so the new
// ISR must be a subset of the current one.
type ReassignPartition struct {
	Topic          string  `json:"topic"`
	ID             TopicID `json:"id"`
	Partition      int32   `json:"partition"`
	PartitionEpoch int32   `json:"partitionEpoch"`
	Replicas       []int32 `json:"replicas"`
	Adding         []int32 `json:"adding,omitempty"`
	Removing       []int32 `json:"removing,omitempty"`
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"`
}

// UnregisterBroker removes a broker's registration (Kafka's UnregisterBrokerRecord), decommissioning it for good:
// it must be fenced and hold no replica (move its replicas away with reassignments first). Epoch must be its
// current broker epoch, so a stale unregister cannot remove a later registration of the same id.
type UnregisterBroker struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// Reassigning reports whether a reassignment of p is in progress.
func (p *Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// checkReassignShape checks adding and removing against replicas: no duplicates, each a replica, none both.
func checkReassignShape(what string, replicas, adding, removing []int32) error {
	if len(adding) == 0 && len(removing) == 0 {
		return nil // no reassignment in progress: nothing to check beyond the replicas themselves
	}
	seen := map[int32]bool{}
	for _, set := range [][]int32{adding, removing} {
		for _, r := range set {
			if !slices.Contains(replicas, r) {
				return invalidKerr(kerr.InvalidReplicaAssignment, "%s: replica %d being added or removed is not in %v", what, r, replicas)
			}
			if seen[r] {
				return invalidKerr(kerr.InvalidReplicaAssignment, "%s: replica %d is named twice among adding %v and removing %v",
					what, r, adding, removing)
			}
			seen[r] = true
		}
	}
	// Replicas = target + removing = original + adding, and neither the target nor the original is empty.
	if len(removing) >= len(replicas) {
		return invalidKerr(kerr.InvalidReplicaAssignment, "%s: every replica of %v is being removed", what, replicas)
	}
	if len(adding) >= len(replicas) {
		return invalidKerr(kerr.InvalidReplicaAssignment, "%s: every replica of %v is being added", what, replicas)
	}
	return nil
}

func (s *State) applyReassign(r *ReassignPartition) error {
	t, err := s.topicAt(r.Topic, r.ID, "ReassignPartition")
	if err != nil {
		return err
	}
	if r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
		return invalidKerr(kerr.UnknownTopicOrPartition, "ReassignPartition: %s has no partition %d", r.Topic, r.Partition)
	}
	p := &t.Partitions[r.Partition]
	what := "ReassignPartition " + r.Topic + "-" + strconv.Itoa(int(r.Partition))
	if r.PartitionEpoch != p.PartitionEpoch {
		return invalidKerr(kerr.InvalidUpdateVersion, "%s: computed from partition epoch %d, current %d",
			what, r.PartitionEpoch, p.PartitionEpoch)
	}
	if err := s.checkPartition(what, r.Replicas, r.ISR, r.Leader); err != nil {
		return err
	}
	if err := checkReassignShape(what, r.Replicas, r.Adding, r.Removing); err != nil {
		return err
	}
	for _, id := range r.ISR {
		if !slices.Contains(p.ISR, id) {
			return invalidKerr(kerr.InvalidRequest, "%s: replica %d would join the ISR %v; only AlterPartition adds to it",
				what, id, p.ISR)
		}
	}
	if r.Leader == p.Leader && slices.Equal(r.Replicas, p.Replicas) && slices.Equal(r.ISR, p.ISR) &&
		slices.Equal(r.Adding, p.AddingReplicas) && slices.Equal(r.Removing, p.RemovingReplicas) {
		return invalid("%s: no change", what)
	}
	if r.Leader != p.Leader {
		p.LeaderEpoch++
	}
	p.PartitionEpoch++
	p.Replicas, p.ISR, p.Leader = slices.Clone(r.Replicas), slices.Clone(r.ISR), r.Leader
	p.AddingReplicas, p.RemovingReplicas = cloneOrNil(r.Adding), cloneOrNil(r.Removing)
	return nil
}

// cloneOrNil keeps "no reassignment" as nil slices, so a state that went through one encodes like one that never
// did.
func cloneOrNil(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func (s *State) applyUnregister(r *UnregisterBroker) error {
	b, err := s.brokerAt(r.ID, r.Epoch, "UnregisterBroker")
	if err != nil {
		return err
	}
	if !b.Fenced {
		return invalidKerr(kerr.InvalidRequest, "UnregisterBroker: broker %d is unfenced (running); shut it down first", r.ID)
	}
	if p := s.replicaOn(r.ID); p != "" {
		return invalidKerr(kerr.InvalidRequest, "UnregisterBroker: broker %d still holds a replica of %s; reassign it away first",
			r.ID, p)
	}
	delete(s.Brokers, r.ID)
	return nil
}

// replicaOn names one partition broker id is a replica of (adding and removing replicas included), or "" if none.
// Linear in partitions; used on unregistration only.
func (s *State) replicaOn(id int32) string {
	for _, name := range s.TopicNames() {
		for i, p := range s.Topics[name].Partitions {
			if slices.Contains(p.Replicas, id) {
				return name + "-" + strconv.Itoa(i)
			}
		}
	}
	return ""
}
