// AlterPartitionReassignments (key 45), versions 0-1.
//
// Forwarded to the active controller, which starts, changes or cancels
// (null replicas) each partition's reassignment as KRaft does (KIP-455):
// the replica list becomes the target followed by the replicas being
// removed; brokers newly in it open the replica and fetch as followers;
// once every new replica is in the ISR the controller completes the move on
// its own (replicas = target; a removed leader hands over to the first
// target replica in sync, in a new leader epoch) and the removed brokers
// delete their copies. A target that only drops or reorders replicas takes
// effect at once. The answer comes once the change is committed and this
// broker's metadata shows it, not once the data moved: follow progress with
// ListPartitionReassignments.
//
// Per-partition errors: INVALID_REPLICA_ASSIGNMENT (empty list, a broker
// twice, unknown or fenced), UNKNOWN_TOPIC_OR_PARTITION,
// NO_REASSIGNMENT_IN_PROGRESS (cancel without one),
// INVALID_REPLICATION_FACTOR (v1, AllowReplicationFactorChange false and a
// target of another size), INVALID_REQUEST (a partition named twice).
//
// Deviations: no replication throttle (Kafka's
// leader/follower.replication.throttled.* configs are not applied, so a
// move copies at full speed); a cancel that would leave no in-sync replica
// or no live leader is refused with INVALID_REPLICA_ASSIGNMENT where Kafka
// would elect uncleanly. A standalone broker holds every replica itself:
// the only valid target is [itself], which changes nothing.
package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ctrl"
)

func init() {
	registerAPI(&apiDef{key: 45, min: 0, max: 1, handle: handleAlterReassignments})
}

func handleAlterReassignments(n *Node, c *call) {
	req := c.kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	c.async(func() {
		resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
		resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
		allowRF := req.Version < 1 || req.AllowReplicationFactorChange
		var targets []ctrl.ReassignTarget
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				targets = append(targets, ctrl.ReassignTarget{Topic: t.Topic, Partition: p.Partition, Replicas: p.Replicas})
			}
		}
		var results map[string]map[int32]error
		var err error
		if n.cluster == nil {
			results = n.standaloneReassign(targets)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), adminWait(req.TimeoutMillis))
			results, err = n.cluster.client.AlterReassignments(ctx, targets, allowRF)
			if err == nil {
				n.cluster.waitReassigned(ctx, targets, results)
			}
			cancel()
		}
		if err != nil {
			resp.ErrorCode, resp.ErrorMessage = forwardedErrCode(err), errMsg(err)
		}
		for _, t := range req.Topics {
			rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				if slices.ContainsFunc(rt.Partitions, func(x kmsg.AlterPartitionAssignmentsResponseTopicPartition) bool {
					return x.Partition == p.Partition
				}) {
					continue // named twice: one answer
				}
				rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				rp.Partition = p.Partition
				perr := err
				if perr == nil {
					perr = results[t.Topic][p.Partition]
				}
				rp.ErrorCode, rp.ErrorMessage = forwardedErrCode(perr), errMsg(perr)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.respond(resp)
	})
}

// adminWait is a forwarded admin request's deadline: its own timeout, at
// least a second, at most adminTimeout.
func adminWait(timeoutMs int32) time.Duration {
	return min(max(time.Duration(timeoutMs)*time.Millisecond, time.Second), adminTimeout)
}

// forwardedErrCode is errCode for errors from the controller client: a
// deadline that ran out while the controller was unreachable or busy is
// REQUEST_TIMED_OUT.
func forwardedErrCode(err error) int16 {
	if errors.Is(err, context.DeadlineExceeded) {
		return kerr.RequestTimedOut.Code
	}
	return errCode(err)
}

// waitReassigned waits (until ctx ends) for this broker's metadata to show
// every accepted change, so the client's next request here sees it: a
// target's replicas leading the replica list (in progress or done), a
// cancel's reassignment gone. A wait cut short is not an error: the change
// is committed either way.
func (c *cluster) waitReassigned(ctx context.Context, targets []ctrl.ReassignTarget, results map[string]map[int32]error) {
	_ = c.waitView(ctx, func(s *ctrl.State) bool {
		for _, tg := range targets {
			if results[tg.Topic][tg.Partition] != nil {
				continue
			}
			t := s.Topics[tg.Topic]
			if t == nil || int(tg.Partition) >= len(t.Partitions) {
				return false
			}
			p := &t.Partitions[tg.Partition]
			if tg.Replicas == nil && p.Reassigning() ||
				tg.Replicas != nil && (len(p.Replicas) < len(tg.Replicas) || !slices.Equal(p.Replicas[:len(tg.Replicas)], tg.Replicas)) {
				return false
			}
		}
		return true
	})
}

// standaloneReassign: this broker is the only replica of everything, so
// the only valid target is [itself] (no change) and nothing is ever in
// progress.
func (n *Node) standaloneReassign(targets []ctrl.ReassignTarget) map[string]map[int32]error {
	out := map[string]map[int32]error{}
	type tp struct {
		topic string
		part  int32
	}
	named := map[tp]int{}
	for _, tg := range targets {
		named[tp{tg.Topic, tg.Partition}]++
	}
	for _, tg := range targets {
		if out[tg.Topic] == nil {
			out[tg.Topic] = map[int32]error{}
		}
		var err error
		switch {
		case named[tp{tg.Topic, tg.Partition}] > 1:
			err = fmt.Errorf("%w: %s-%d named more than once", kerr.InvalidRequest, tg.Topic, tg.Partition)
		case n.reg.partition(tg.Topic, tg.Partition) == nil:
			err = fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, tg.Topic, tg.Partition)
		case tg.Replicas == nil:
			err = fmt.Errorf("%w: %s-%d", kerr.NoReassignmentInProgress, tg.Topic, tg.Partition)
		case len(tg.Replicas) != 1 || tg.Replicas[0] != n.cfg.NodeID:
			err = fmt.Errorf("%w: %s-%d: %v; the only broker is %d", kerr.InvalidReplicaAssignment, tg.Topic, tg.Partition,
				tg.Replicas, n.cfg.NodeID)
		}
		out[tg.Topic][tg.Partition] = err
	}
	return out
}
