package ctrl

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// partKey names a partition of a topic incarnation.
type partKey struct {
	id   TopicID
	part int32
}

// AlterReassignments runs Kafka's AlterPartitionReassignments: each target sets a partition's target replicas
// (see DecideReassign; Replicas nil cancels). done gets one result per named partition: nil (started, changed,
// cancelled, completed at once, or already as asked), or an error wrapping UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_REPLICA_ASSIGNMENT, INVALID_REPLICATION_FACTOR, NO_REASSIGNMENT_IN_PROGRESS, INVALID_REQUEST (a
// partition named twice), or NOT_CONTROLLER when this controller lost its leadership before the change was
// applied (the outcome is then unknown). A started reassignment completes later, on its own, once the new replicas
// are in the ISR. The only synchronous errors are ErrNotLeader and the sticky one. Safe for concurrent use.
func (n *Node) AlterReassignments(targets []ReassignTarget, allowRFChange bool, done func(map[string]map[int32]error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	res := map[string]map[int32]error{}
	set := func(topic string, i int32, err error) { setPartResult(res, topic, i, err) }
	named := map[string]map[int32]int{}
	for _, tg := range targets {
		if named[tg.Topic] == nil {
			named[tg.Topic] = map[int32]int{}
		}
		named[tg.Topic][tg.Partition]++
	}
	var recs []*ReassignPartition
	for _, tg := range targets {
		if _, dup := res[tg.Topic][tg.Partition]; dup {
			continue
		}
		t := n.state.Topics[tg.Topic]
		switch {
		case named[tg.Topic][tg.Partition] > 1:
			set(tg.Topic, tg.Partition, fmt.Errorf("%w: %s-%d named more than once", kerr.InvalidRequest, tg.Topic, tg.Partition))
			continue
		case t == nil || tg.Partition < 0 || int(tg.Partition) >= len(t.Partitions):
			set(tg.Topic, tg.Partition, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, tg.Topic, tg.Partition))
			continue
		}
		r, err := DecideReassign(n.state, t, tg.Partition, tg.Replicas, allowRFChange)
		set(tg.Topic, tg.Partition, err)
		if r != nil {
			recs = append(recs, r)
		}
	}
	if done == nil {
		done = func(map[string]map[int32]error) {}
	}
	if len(recs) == 0 {
		n.later(func() { done(res) })
		return nil
	}
	prs := make([]partRecord, len(recs))
	for i, r := range recs {
		prs[i] = partRecord{r.Topic, r.Partition, Record{Type: TypeReassignPartition, ReassignPartition: r}}
	}
	return n.proposePerPartition(prs, res, notController, done)
}

// notController names a lost or missing controller leadership as Kafka's NOT_CONTROLLER.
func notController(err error) error {
	if errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrStopped) {
		return fmt.Errorf("%w: %w", kerr.NotController, err)
	}
	return err
}

// ListReassignments returns the active controller's reassignments in progress (see the ListReassignments
// function; parts nil: all). Errors: ErrNotLeader and the sticky one. Safe for concurrent use.
func (n *Node) ListReassignments(parts map[string][]int32) ([]Reassignment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return nil, err
	}
	return ListReassignments(n.state, parts), nil
}

// UnregisterBroker removes broker id from the metadata for good (Kafka's UnregisterBroker, the last step of a
// decommission). It is refused while the broker is unfenced (shut it down first) or still a replica of any
// partition (reassign those away first), since Kafka would leave such partitions with a replica that can never
// come back. Errors (sync or via done) wrap BROKER_ID_NOT_REGISTERED or INVALID_REQUEST, or are ErrNotLeader.
// Safe for concurrent use.
func (n *Node) UnregisterBroker(id int32, done func(error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	b := n.state.Brokers[id]
	if b == nil {
		return fmt.Errorf("%w: broker %d", kerr.BrokerIDNotRegistered, id)
	}
	r := Record{Type: TypeUnregisterBroker, UnregisterBroker: &UnregisterBroker{ID: id, Epoch: b.Epoch}}
	if err := n.state.Clone().Apply(r, n.state.AppliedIndex+1); err != nil { // answer Apply's refusals now
		return err
	}
	return n.proposeRecords([]Record{r}, done)
}

// completeReassignments runs under mu after entries were applied: on the active controller it proposes the
// completion of every reassignment whose adding replicas are all in the ISR now (usually the AlterPartition just
// applied put the last one there). Each completion is proposed once per partition epoch; a proposal that loses a
// race with another change is rejected at apply and decided again after the next one.
func (n *Node) completeReassignments() {
	if !n.leading || n.err != nil {
		clear(n.reassign)
		return
	}
	for _, c := range ReassignCompletions(n.state) {
		k := partKey{c.ID, c.Partition}
		if e, ok := n.reassign[k]; ok && e == c.PartitionEpoch {
			continue
		}
		rec := Record{Type: TypeReassignPartition, ReassignPartition: &c}
		err := n.proposeRecords([]Record{rec}, func(error) {
			n.mu.Lock()
			if e, ok := n.reassign[k]; ok && e == c.PartitionEpoch {
				delete(n.reassign, k)
			}
			n.mu.Unlock()
		})
		if err != nil {
			return // not leading any more, or stopped: the next active controller decides again
		}
		if n.reassign == nil {
			n.reassign = map[partKey]int32{}
		}
		n.reassign[k] = c.PartitionEpoch
	}
}
