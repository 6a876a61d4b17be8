package ctrl

import (
	"crypto/rand"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Explicit replica assignments (CreateTopics' Assignments, CreatePartitions' Assignment): the operator names
// each partition's replicas instead of Place choosing them.

// ValidateAssignment checks an explicit assignment as Kafka's KRaft controller does and returns the partitions'
// initial state. assign[i] lists partition i's replicas, the first the preferred leader. Every list must be
// non-empty, name no broker twice and only registered brokers, and all lists must be as long as rf (rf <= 0: as
// long as the first). A fenced replica is allowed but starts outside the ISR; the leader is the first live replica
// in assignment order, so the preferred replica leads whenever it is live. A partition whose replicas are all fenced
// is refused. Errors wrap INVALID_REPLICA_ASSIGNMENT (INVALID_PARTITIONS for more than MaxNewPartitions). Pure.
func ValidateAssignment(s *State, assign [][]int32, rf int) ([]PartitionInit, error) {
	if len(assign) == 0 {
		return nil, fmt.Errorf("%w: the assignment lists no partitions", kerr.InvalidReplicaAssignment)
	}
	if len(assign) > MaxNewPartitions {
		return nil, fmt.Errorf("%w: %d partitions at once, at most %d", kerr.InvalidPartitions, len(assign), MaxNewPartitions)
	}
	if rf <= 0 {
		rf = len(assign[0])
	}
	out := make([]PartitionInit, 0, len(assign))
	for i, rs := range assign {
		if len(rs) == 0 {
			return nil, fmt.Errorf("%w: partition %d has no replicas", kerr.InvalidReplicaAssignment, i)
		}
		if len(rs) != rf {
			return nil, fmt.Errorf("%w: partition %d has %d replicas %v, the others have %d; every partition needs the same number",
				kerr.InvalidReplicaAssignment, i, len(rs), rs, rf)
		}
		var isr []int32
		for j, id := range rs {
			if slices.Contains(rs[:j], id) {
				return nil, fmt.Errorf("%w: partition %d names broker %d twice in %v", kerr.InvalidReplicaAssignment, i, id, rs)
			}
			if s.Brokers[id] == nil {
				return nil, fmt.Errorf("%w: partition %d: broker %d is not registered", kerr.InvalidReplicaAssignment, i, id)
			}
			if s.Live(id) {
				isr = append(isr, id)
			}
		}
		if len(isr) == 0 {
			return nil, fmt.Errorf("%w: partition %d: every broker of %v is fenced", kerr.InvalidReplicaAssignment, i, rs)
		}
		out = append(out, PartitionInit{Replicas: slices.Clone(rs), ISR: isr, Leader: isr[0]})
	}
	return out, nil
}

// CreateTopicAssigned creates a topic with the explicit assignment assign (see ValidateAssignment); done receives
// the topic id. Errors (sync or via done) wrap INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS,
// INVALID_REPLICA_ASSIGNMENT, INVALID_PARTITIONS, or are ErrNotLeader. Safe for concurrent use.
func (n *Node) CreateTopicAssigned(name string, assign [][]int32, configs map[string]string, done func(TopicID, error)) error {
	if !ValidTopicName(name) {
		return fmt.Errorf("%w: %q", kerr.InvalidTopicException, name)
	}
	var id TopicID
	_, _ = rand.Read(id[:])
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	if n.state.Topics[name] != nil {
		return fmt.Errorf("%w: %q", kerr.TopicAlreadyExists, name)
	}
	parts, err := ValidateAssignment(n.state, assign, 0)
	if err != nil {
		return err
	}
	b, err := EncodeRecord(Record{Type: TypeCreateTopic, CreateTopic: &CreateTopic{Name: name, ID: id,
		Configs: maps.Clone(configs), Partitions: parts}})
	if err != nil { // above MaxRecordSize
		return fmt.Errorf("%w: %w", kerr.InvalidReplicaAssignment, err)
	}
	return n.proposeLocked(b, func(_ uint64, err error) {
		if done != nil {
			done(id, err)
		}
	})
}

// CreatePartitionsAssigned grows a topic to total partitions with the explicit assignment assign for the new ones
// (one list per new partition, each as long as partition 0's; see ValidateAssignment). Errors wrap
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS (total not above the current count),
// INVALID_REPLICA_ASSIGNMENT, or are ErrNotLeader. Safe for concurrent use.
func (n *Node) CreatePartitionsAssigned(name string, total int, assign [][]int32, done func(error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, cur, err := n.growableLocked(name, total)
	if err != nil {
		return err
	}
	if len(assign) != total-cur {
		return fmt.Errorf("%w: adding %d partitions to %q but %d assignments given", kerr.InvalidReplicaAssignment,
			total-cur, name, len(assign))
	}
	parts, err := ValidateAssignment(n.state, assign, len(t.Partitions[0].Replicas))
	if err != nil {
		return err
	}
	b, err := EncodeRecord(Record{Type: TypeCreatePartitions, CreatePartitions: &CreatePartitions{Topic: name, ID: t.ID,
		Partitions: parts}})
	if err != nil {
		return fmt.Errorf("%w: %w", kerr.InvalidPartitions, err)
	}
	return n.proposeLocked(b, func(_ uint64, err error) { callErr(done, err) })
}
