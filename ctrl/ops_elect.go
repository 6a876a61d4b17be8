package ctrl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ElectLeaders runs Kafka's ElectLeaders. Preferred (unclean false): leadership moves to Replicas[0] where it is
// live and in the ISR; per partition the result is nil (moved), ELECTION_NOT_NEEDED (it leads already),
// PREFERRED_LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION. Unclean: only partitions without a leader, which
// get an ISR member if one is live, else the first live replica with the ISR reset to it (its log wins); results
// nil, ELECTION_NOT_NEEDED (it has a leader), ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION.
// parts nil means every partition, and then partitions that need no election are left out of the result (as
// Kafka does). done always gets a result; a partition whose change failed to commit gets that error (e.g.
// ErrLeadershipLost). The only synchronous errors are ErrNotLeader and the sticky one. Safe for concurrent use.
func (n *Node) ElectLeaders(unclean bool, parts map[string][]int32, done func(map[string]map[int32]error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	res := map[string]map[int32]error{}
	set := func(topic string, i int32, err error) { setPartResult(res, topic, i, err) }
	var cs []ChangePartition
	visit := func(name string, i int32) {
		if _, dup := res[name][i]; dup {
			return
		}
		t := n.state.Topics[name]
		if t == nil || i < 0 || int(i) >= len(t.Partitions) {
			set(name, i, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, name, i))
			return
		}
		c, err := electOne(n.state, t, i, unclean)
		if err == nil {
			cs = append(cs, c)
		} else if parts == nil && errors.Is(err, kerr.ElectionNotNeeded) {
			return
		}
		set(name, i, err)
	}
	if parts == nil {
		forEachPartition(n.state, func(t *Topic, i int32, _ *Partition) { visit(t.Name, i) })
	} else {
		names := make([]string, 0, len(parts))
		for name := range parts {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			for _, i := range parts[name] {
				visit(name, i)
			}
		}
	}
	if done == nil {
		done = func(map[string]map[int32]error) {}
	}
	if len(cs) == 0 {
		n.later(func() { done(res) })
		return nil
	}
	recs := make([]partRecord, len(cs))
	for i := range cs {
		recs[i] = partRecord{cs[i].Topic, cs[i].Partition, Record{Type: TypeChangePartition, ChangePartition: &cs[i]}}
	}
	return n.proposePerPartition(recs, res, nil, done)
}

// electOne decides one partition's election for ElectLeaders.
func electOne(s *State, t *Topic, i int32, unclean bool) (ChangePartition, error) {
	p := &t.Partitions[i]
	if !unclean {
		pref := p.Replicas[0]
		if p.Leader == pref {
			return ChangePartition{}, fmt.Errorf("%w: %s-%d is led by its preferred replica %d", kerr.ElectionNotNeeded, t.Name, i, pref)
		}
		if !s.Live(pref) || !slices.Contains(p.ISR, pref) {
			return ChangePartition{}, fmt.Errorf("%w: %s-%d: preferred replica %d is fenced or not in the ISR %v",
				kerr.PreferredLeaderNotAvailable, t.Name, i, pref, p.ISR)
		}
		c, _ := change(t, i, p, pref, p.ISR)
		return c, nil
	}
	if p.Leader != NoLeader {
		return ChangePartition{}, fmt.Errorf("%w: %s-%d has leader %d", kerr.ElectionNotNeeded, t.Name, i, p.Leader)
	}
	leader, isr, _ := ElectLeader(p.Replicas, p.ISR, s.Live, true)
	if leader == NoLeader {
		return ChangePartition{}, fmt.Errorf("%w: %s-%d: no replica of %v is live", kerr.EligibleLeadersNotAvailable, t.Name, i, p.Replicas)
	}
	c, _ := change(t, i, p, leader, isr)
	return c, nil
}

// shutdownRetries bounds how often ControlledShutdown recomputes its batch when Apply rejected it because another
// change to one of the partitions won the race.
const shutdownRetries = 3

// ControlledShutdown is Kafka's controlled shutdown on the active controller: in one batch, every partition broker
// brokerID leads gets another live ISR member as leader (NoLeader if there is none), it leaves every ISR it is not
// the last member of (FenceChanges), and it is fenced. From then on its heartbeats do not unfence it (until it
// registers again); the broker may exit once done(nil) ran. An already fenced broker gets done(nil) at once.
// Errors wrap BROKER_ID_NOT_REGISTERED or STALE_BROKER_EPOCH (sync), or are ErrNotLeader, or come through done
// (e.g. ErrLeadershipLost). Safe for concurrent use.
func (n *Node) ControlledShutdown(brokerID int32, epoch int64, done func(error)) error {
	if done == nil {
		done = func(error) {}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	return n.controlledShutdownLocked(brokerID, epoch, done, 0)
}

func (n *Node) controlledShutdownLocked(id int32, epoch int64, done func(error), attempt int) error {
	b := n.state.Brokers[id]
	if b == nil {
		return fmt.Errorf("%w: broker %d", kerr.BrokerIDNotRegistered, id)
	}
	if b.Epoch != epoch {
		return fmt.Errorf("%w: broker %d epoch %d, current %d", kerr.StaleBrokerEpoch, id, epoch, b.Epoch)
	}
	n.sess.shutdown[id] = epoch
	delete(n.sess.gone, id)
	if n.sess.inflight[id] {
		// E.g. its unfence is not applied yet: decide once it is (brokerIdle), on the state it produced.
		if old, ok := n.sess.waiting[id]; ok { // a retried request: both callers get the outcome
			both := done
			done = func(err error) { old.done(err); both(err) }
		}
		n.sess.waiting[id] = shutdownWait{epoch: epoch, done: done, attempt: attempt}
		return nil
	}
	if b.Fenced {
		n.later(func() { done(nil) })
		return nil
	}
	return n.proposeForBroker(id, n.fenceRecords(b), func(_ uint64, err error) {
		if err != nil && errors.Is(err, ErrInvalidRecord) && attempt < shutdownRetries {
			// Lost a race with another change to one of its partitions: decide again on the newer state.
			n.mu.Lock()
			if rerr := n.activeLocked(); rerr == nil {
				rerr = n.controlledShutdownLocked(id, epoch, done, attempt+1)
				err = rerr
			} else {
				err = rerr
			}
			n.mu.Unlock()
			if err == nil {
				return
			}
		}
		done(err)
	})
}

// waitApplied blocks until the applied index is above after, ctx ends, or the Node stops, without holding the
// Node's lock while waiting. It returns the applied index it saw last. Safe for concurrent use.
func (n *Node) waitApplied(ctx context.Context, after uint64) uint64 {
	for {
		n.mu.Lock()
		idx := n.state.AppliedIndex
		if idx > after || n.err != nil {
			n.mu.Unlock()
			return idx
		}
		if n.applied == nil {
			n.applied = make(chan struct{})
		}
		ch := n.applied
		n.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return idx
		}
	}
}

// setPartResult records err for topic-i in a per-partition result map.
func setPartResult(res map[string]map[int32]error, topic string, i int32, err error) {
	if res[topic] == nil {
		res[topic] = map[int32]error{}
	}
	res[topic][i] = err
}
