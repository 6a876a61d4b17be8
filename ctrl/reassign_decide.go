package ctrl

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Reassignment decisions, pure functions over a State like elect.go's: they compute ReassignPartition records and
// never mutate. Kafka's rules (KIP-455; Kafka's ReplicaAssignment.reassignTo and KRaft's reassignment classes):
//
//   - start (or change): with original = replicas − adding (the replicas before any reassignment), replicas =
//     target + (original − target), adding = target − original, removing = original − target. So naming the same
//     target again changes nothing, and replicas an earlier target was adding that this one does not name leave at
//     once (the ISR drops them; a leader among them hands over as in a cancel). ISR and leader are otherwise kept;
//   - complete, once every adding replica is in the ISR: replicas = target, ISR = ISR − removing, and a leader being
//     removed (or none) is replaced by the first target replica in the ISR and live. A reassignment that needs no
//     new replica (only removals, or a reordering) completes in the very record that starts it;
//   - cancel: replicas = original, ISR = ISR − adding, and a leader being added is replaced by the first original
//     replica in the ISR and live.
//
// Deviations, both to avoid losing data or availability where Kafka would not wait: a completion whose leader is
// removed and no target replica is in the ISR and live waits instead of leaving the partition leaderless; a cancel
// or change that would leave no ISR (Kafka then elects uncleanly) or no live leader is refused with
// INVALID_REPLICA_ASSIGNMENT.

// ReassignTarget is one partition's requested replicas for AlterReassignments; Replicas nil cancels the
// reassignment in progress, empty is invalid.
type ReassignTarget struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// DecideReassign computes what target replicas (nil: cancel) do to partition i of t: the record to propose, or
// nil when the partition already is as asked. allowRFChange false refuses a target whose length differs from the
// replica count before any reassignment (KIP-860). Errors wrap INVALID_REPLICA_ASSIGNMENT (empty target, a broker
// twice, unknown or fenced; a change that would lose the ISR or the leader), INVALID_REPLICATION_FACTOR or
// NO_REASSIGNMENT_IN_PROGRESS. i must be a partition of t. Pure.
func DecideReassign(s *State, t *Topic, i int32, target []int32, allowRFChange bool) (*ReassignPartition, error) {
	p := &t.Partitions[i]
	name := fmt.Sprintf("%s-%d", t.Name, i)
	orig := without(p.Replicas, p.AddingReplicas)
	if target == nil {
		if !p.Reassigning() {
			return nil, fmt.Errorf("%w: %s", kerr.NoReassignmentInProgress, name)
		}
		next, err := keepLeader(s, p, orig, name)
		if err != nil {
			return nil, err
		}
		return reassignRecord(t, i, p, next), nil
	}
	if len(target) == 0 {
		return nil, fmt.Errorf("%w: %s: empty replica list (null cancels a reassignment)", kerr.InvalidReplicaAssignment, name)
	}
	for j, r := range target {
		if slices.Contains(target[:j], r) {
			return nil, fmt.Errorf("%w: %s: broker %d twice in %v", kerr.InvalidReplicaAssignment, name, r, target)
		}
		switch b := s.Brokers[r]; {
		case b == nil:
			return nil, fmt.Errorf("%w: %s: broker %d is not registered", kerr.InvalidReplicaAssignment, name, r)
		case b.Fenced:
			return nil, fmt.Errorf("%w: %s: broker %d is fenced", kerr.InvalidReplicaAssignment, name, r)
		}
	}
	if !allowRFChange && len(target) != len(orig) {
		return nil, fmt.Errorf("%w: %s: %d target replicas, replication factor is %d and may not change",
			kerr.InvalidReplicationFactor, name, len(target), len(orig))
	}
	removing := without(orig, target)
	next, err := keepLeader(s, p, append(slices.Clone(target), removing...), name)
	if err != nil {
		return nil, err
	}
	next.AddingReplicas, next.RemovingReplicas = without(target, orig), removing
	if done, ok := completeReassign(s, next); ok {
		next = done
	}
	return reassignRecord(t, i, p, next), nil
}

// keepLeader is p with its replicas set to replicas: the ISR loses the replicas no longer named, and a leader no
// longer named (or none) is replaced by the first replica in the ISR and live. Refused when no ISR or no live
// leader would be left.
func keepLeader(s *State, p *Partition, replicas []int32, name string) (Partition, error) {
	next := Partition{Replicas: replicas, ISR: within(p.ISR, replicas), Leader: p.Leader}
	if len(next.ISR) == 0 {
		return next, fmt.Errorf("%w: %s: every in-sync replica %v would leave; name one of them in the target",
			kerr.InvalidReplicaAssignment, name, p.ISR)
	}
	if p.Leader == NoLeader || !slices.Contains(replicas, p.Leader) {
		next.Leader, _, _ = ElectLeader(replicas, next.ISR, s.Live, false)
		if next.Leader == NoLeader && p.Leader != NoLeader {
			return next, fmt.Errorf("%w: %s: no replica of %v is in sync (%v) and live to take over leadership from %d",
				kerr.InvalidReplicaAssignment, name, replicas, next.ISR, p.Leader)
		}
	}
	return next, nil
}

// completeReassign returns p with its reassignment completed, if it is in progress and may complete now.
func completeReassign(s *State, p Partition) (Partition, bool) {
	if !p.Reassigning() {
		return p, false
	}
	isr := without(p.ISR, p.RemovingReplicas)
	if len(isr) == 0 {
		return p, false
	}
	for _, r := range p.AddingReplicas {
		if !slices.Contains(isr, r) {
			return p, false
		}
	}
	done := Partition{Replicas: without(p.Replicas, p.RemovingReplicas), ISR: isr, Leader: p.Leader}
	if p.Leader == NoLeader || slices.Contains(p.RemovingReplicas, p.Leader) {
		done.Leader, _, _ = ElectLeader(done.Replicas, isr, s.Live, false)
		if done.Leader == NoLeader && p.Leader != NoLeader {
			return p, false // wait for a target replica to be live rather than take the partition offline
		}
	}
	return done, true
}

// reassignRecord is the record moving partition i (currently p) to next, nil if nothing changes.
func reassignRecord(t *Topic, i int32, p *Partition, next Partition) *ReassignPartition {
	if next.Leader == p.Leader && slices.Equal(next.Replicas, p.Replicas) && slices.Equal(next.ISR, p.ISR) &&
		slices.Equal(next.AddingReplicas, p.AddingReplicas) && slices.Equal(next.RemovingReplicas, p.RemovingReplicas) {
		return nil
	}
	return &ReassignPartition{Topic: t.Name, ID: t.ID, Partition: i, PartitionEpoch: p.PartitionEpoch,
		Replicas: slices.Clone(next.Replicas), Adding: cloneOrNil(next.AddingReplicas),
		Removing: cloneOrNil(next.RemovingReplicas), ISR: slices.Clone(next.ISR), Leader: next.Leader}
}

// ReassignCompletions computes the records completing every reassignment that may complete now (every adding
// replica in the ISR), sorted by topic and partition. The active controller proposes them after each apply.
func ReassignCompletions(s *State) []ReassignPartition {
	var out []ReassignPartition
	for _, t := range s.Topics { // map order; sorted below (a full sort of the topic names per apply would cost more)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if !p.Reassigning() {
				continue
			}
			if done, ok := completeReassign(s, *p); ok {
				if r := reassignRecord(t, int32(i), p, done); r != nil {
					out = append(out, *r)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b ReassignPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// Reassignment is a partition's reassignment in progress, as ListPartitionReassignments reports it.
type Reassignment struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding,omitempty"`
	Removing  []int32 `json:"removing,omitempty"`
}

// ListReassignments returns the reassignments in progress sorted by topic and partition: every one (parts nil) or
// those of the named partitions; unknown topics and partitions and partitions not being reassigned are left out,
// as Kafka does. Pure.
func ListReassignments(s *State, parts map[string][]int32) []Reassignment {
	var out []Reassignment
	add := func(t *Topic, i int32) {
		if i < 0 || int(i) >= len(t.Partitions) {
			return
		}
		p := &t.Partitions[i]
		if !p.Reassigning() {
			return
		}
		out = append(out, Reassignment{Topic: t.Name, Partition: i, Replicas: slices.Clone(p.Replicas),
			Adding: cloneOrNil(p.AddingReplicas), Removing: cloneOrNil(p.RemovingReplicas)})
	}
	if parts == nil {
		for _, t := range s.Topics {
			for i := range t.Partitions {
				add(t, int32(i))
			}
		}
	} else {
		for name, ps := range parts {
			if t := s.Topics[name]; t != nil {
				for _, i := range slices.Compact(slices.Sorted(slices.Values(ps))) {
					add(t, i)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Reassignment) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// within returns the members of a that are in b, in a's order (nil when none).
func within(a, b []int32) []int32 {
	var out []int32
	for _, r := range a {
		if slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

// without returns the members of a not in b, in a's order (nil when none).
func without(a, b []int32) []int32 {
	var out []int32
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}
