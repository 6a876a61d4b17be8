// ListPartitionReassignments (key 46), version 0.
//
// Forwarded to the active controller (its committed state, not this
// broker's possibly older view). Lists the reassignments in progress with
// the partition's replicas (target first, then those being removed) and
// the adding and removing replicas: every one for a null topic list, else
// those of the named partitions; partitions not being reassigned and
// unknown topics or partitions are left out, as in Kafka. A standalone
// broker never has one in progress.
package node

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 46, min: 0, max: 0, handle: handleListReassignments})
}

func handleListReassignments(n *Node, c *call) {
	req := c.kreq.(*kmsg.ListPartitionReassignmentsRequest)
	c.async(func() {
		resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
		if n.cluster == nil {
			c.respond(resp)
			return
		}
		var parts map[string][]int32
		if req.Topics != nil {
			parts = map[string][]int32{}
			for _, t := range req.Topics {
				parts[t.Topic] = append(parts[t.Topic], t.Partitions...)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), adminWait(req.TimeoutMillis))
		list, err := n.cluster.client.ListReassignments(ctx, parts)
		cancel()
		if err != nil {
			resp.ErrorCode, resp.ErrorMessage = forwardedErrCode(err), errMsg(err)
			c.respond(resp)
			return
		}
		var rt *kmsg.ListPartitionReassignmentsResponseTopic
		for _, r := range list { // sorted by topic, then partition
			if rt == nil || rt.Topic != r.Topic {
				resp.Topics = append(resp.Topics, kmsg.NewListPartitionReassignmentsResponseTopic())
				rt = &resp.Topics[len(resp.Topics)-1]
				rt.Topic = r.Topic
			}
			rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			rp.Partition, rp.Replicas = r.Partition, r.Replicas
			rp.AddingReplicas, rp.RemovingReplicas = nonNil(r.Adding), nonNil(r.Removing)
			rt.Partitions = append(rt.Partitions, rp)
		}
		c.respond(resp)
	})
}

// nonNil: the response's arrays are not nullable.
func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}
