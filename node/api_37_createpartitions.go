// CreatePartitions (key 37), versions 0-3.
//
// Grows a topic to Count partitions: the metadata is persisted first, then
// the new partitions' logs are created, before the answer (so the timeout
// has nothing to wait for); a new partition answers LEADER_NOT_AVAILABLE
// only in that window. A count at or below the current one is
// INVALID_PARTITIONS (partitions cannot be removed). An explicit Assignment
// must give one replica list per new partition (standalone: each exactly
// this broker), else INVALID_REPLICA_ASSIGNMENT. A topic named twice in one request is
// INVALID_REQUEST for each occurrence (the others proceed), as in Kafka;
// unknown topic: UNKNOWN_TOPIC_OR_PARTITION. ValidateOnly validates without
// creating. Runs off the event loop. In a cluster an Assignment is checked by
// the controller as Kafka's is (ctrl.ValidateAssignment; each list as long
// as the topic's replication factor), the first replica preferred.
//
// Deviations: none (standalone, every new partition is led by this broker
// with itself as the ISR).
package node

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 37, min: 0, max: 3, handle: handleCreatePartitions})
}

func handleCreatePartitions(n *Node, c *call) {
	req := c.kreq.(*kmsg.CreatePartitionsRequest)
	c.async(func() {
		resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
		seen := map[string]int{}
		for _, rt := range req.Topics {
			seen[rt.Topic]++
		}
		for i := range req.Topics {
			rt := &req.Topics[i]
			out := kmsg.NewCreatePartitionsResponseTopic()
			out.Topic = rt.Topic
			if seen[rt.Topic] > 1 {
				out.ErrorCode = kerr.InvalidRequest.Code
				out.ErrorMessage = errMsg(fmt.Errorf("topic %q appears more than once in the request", rt.Topic))
			} else {
				out.ErrorCode, out.ErrorMessage = n.createPartitions(rt, req.ValidateOnly)
			}
			resp.Topics = append(resp.Topics, out)
		}
		c.respond(resp)
	})
}

func (n *Node) createPartitions(rt *kmsg.CreatePartitionsRequestTopic, validateOnly bool) (int16, *string) {
	t := n.reg.get(rt.Topic)
	if t == nil {
		return kerr.UnknownTopicOrPartition.Code, errMsg(fmt.Errorf("%w: %q", errUnknownTopic, rt.Topic))
	}
	have := int32(len(n.reg.partitions(t)))
	var assign [][]int32
	if rt.Assignment != nil && rt.Count > have {
		var err error
		if assign, err = n.checkNewAssignment(rt.Assignment, rt.Count-have); err != nil {
			return kerr.InvalidReplicaAssignment.Code, errMsg(err)
		}
	}
	var err error
	if assign != nil && n.cluster != nil {
		err = n.addPartitionsAssigned(rt.Topic, rt.Count, assign, validateOnly)
	} else {
		err = n.addPartitions(rt.Topic, rt.Count, validateOnly)
	}
	if err != nil {
		code := errCode(err)
		if code == kerr.KafkaStorageError.Code || code == kerr.UnknownServerError.Code {
			n.log.Error("creating partitions failed", "topic", rt.Topic, "count", rt.Count, "err", err)
		}
		return code, errMsg(err)
	}
	if !validateOnly {
		n.log.Info("created partitions", "topic", rt.Topic, "from", have, "to", rt.Count)
	}
	return 0, nil
}

// checkNewAssignment wants one replica list per new partition and returns
// them. Standalone, each must be exactly this broker; in a cluster the
// controller validates the replicas.
func (n *Node) checkNewAssignment(as []kmsg.CreatePartitionsRequestTopicAssignment, added int32) ([][]int32, error) {
	if int32(len(as)) != added {
		return nil, fmt.Errorf("increasing the number of partitions by %d but %d assignments provided", added, len(as))
	}
	out := make([][]int32, len(as))
	for i, a := range as {
		if n.cluster == nil && (len(a.Replicas) != 1 || a.Replicas[0] != n.cfg.NodeID) {
			return nil, fmt.Errorf("new partition %d: replicas %v; this standalone broker can only place partitions on itself (broker %d)",
				i, a.Replicas, n.cfg.NodeID)
		}
		out[i] = append([]int32{}, a.Replicas...)
	}
	return out, nil
}
