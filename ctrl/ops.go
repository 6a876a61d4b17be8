package ctrl

import (
	"crypto/rand"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Controller operations: each decides on the applied state under the lock (placement, election, validation) and
// proposes the outcome. A decision can race with another proposal not yet applied; Apply re-validates (partition
// epochs, topic ids) so the loser is rejected through its callback, never applied stale.

// CreateTopic places partitions×rf replicas on the unfenced brokers and proposes the topic with every replica in
// the ISR and the preferred replica leading. done receives the topic id. Errors (sync or via done) wrap
// INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, or ErrNotLeader.
// Safe for concurrent use.
func (n *Node) CreateTopic(name string, partitions, rf int, configs map[string]string, done func(TopicID, error)) error {
	if !ValidTopicName(name) {
		return fmt.Errorf("%w: %q", kerr.InvalidTopicException, name)
	}
	var id TopicID
	_, _ = rand.Read(id[:])
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return n.err
	}
	if !n.leading {
		return ErrNotLeader
	}
	if n.state.Topics[name] != nil {
		return fmt.Errorf("%w: %q", kerr.TopicAlreadyExists, name)
	}
	if partitions > MaxNewPartitions {
		return fmt.Errorf("%w: %d partitions, at most %d", kerr.InvalidPartitions, partitions, MaxNewPartitions)
	}
	bs := PlaceBrokers(n.state)
	if len(bs) == 0 {
		return fmt.Errorf("%w: no unfenced brokers", kerr.InvalidReplicationFactor)
	}
	assign, err := Place(PlaceRequest{Brokers: bs, Partitions: partitions, RF: rf,
		StartIndex: mrand.IntN(len(bs)), Shift: mrand.IntN(len(bs))})
	if err != nil {
		return err
	}
	ct := &CreateTopic{Name: name, ID: id, Configs: maps.Clone(configs)}
	for _, rs := range assign {
		ct.Partitions = append(ct.Partitions, PartitionInit{Replicas: rs, ISR: slices.Clone(rs), Leader: rs[0]})
	}
	b, err := EncodeRecord(Record{Type: TypeCreateTopic, CreateTopic: ct})
	if err != nil {
		return err
	}
	return n.proposeLocked(b, func(_ uint64, err error) {
		if done != nil {
			done(id, err)
		}
	})
}

// AlterPartition validates a partition leader's ISR change (see ValidateAlterPartition) and proposes it. done gets
// the change applied (nil when the ISR already was as asked) or the error to answer with. Safe for concurrent use.
func (n *Node) AlterPartition(req AlterPartitionRequest, done func(*ChangePartition, error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return n.err
	}
	if !n.leading {
		return ErrNotLeader
	}
	c, err := ValidateAlterPartition(n.state, req)
	if err != nil || c == nil {
		n.ready = append(n.ready, func() { done(c, err) })
		n.signal()
		return nil
	}
	b, err := EncodeRecord(Record{Type: TypeChangePartition, ChangePartition: c})
	if err != nil {
		return err
	}
	return n.proposeLocked(b, func(_ uint64, err error) { done(c, err) })
}

// ElectPreferredLeaders proposes preferred-leader elections for every partition that can have one; done gets how
// many partitions changed (0 with no proposal when none could). Safe for concurrent use.
func (n *Node) ElectPreferredLeaders(done func(int, error)) error {
	return n.proposeElections(PreferredChanges, done)
}

// ElectOfflineLeaders proposes an election for every leaderless partition that now has an eligible leader, unclean
// ones included where unclean.leader.election.enable allows them. Fencing, unfencing and config changes already do
// this for what they touch; this periodic sweep (Kafka's, every leader.imbalance.check.interval.seconds) catches
// what they cannot, such as a controller restarted with the static key turned on. done gets how many partitions
// changed. Safe for concurrent use.
func (n *Node) ElectOfflineLeaders(done func(int, error)) error {
	return n.proposeElections(OfflineChanges, done)
}

// proposeElections proposes what changes computes from the current state, in one batch.
func (n *Node) proposeElections(changes func(*State) []ChangePartition, done func(int, error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	cs := changes(n.state)
	if len(cs) == 0 {
		n.ready = append(n.ready, func() { done(0, nil) })
		n.signal()
		return nil
	}
	b, err := EncodeRecord(batch(changeRecords(cs)))
	if err != nil {
		return err
	}
	return n.proposeLocked(b, func(_ uint64, err error) { done(len(cs), err) })
}
