// ElectLeaders (key 43), versions 0-2.
//
// Forwarded to the active controller. Preferred elections (type 0) move a
// partition's leadership to its first replica when it is live and in sync;
// unclean ones (type 1, v1+) give a leaderless partition a live replica even
// if it is out of sync (it may lose acknowledged records). A null topic list
// means every partition; then partitions needing no election are left out,
// as in Kafka. Per-partition errors: ELECTION_NOT_NEEDED,
// PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
// UNKNOWN_TOPIC_OR_PARTITION. A standalone broker leads every partition
// itself, so every named partition answers ELECTION_NOT_NEEDED.
package node

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 43, min: 0, max: 2, handle: handleElectLeaders})
}

func handleElectLeaders(n *Node, c *call) {
	req := c.kreq.(*kmsg.ElectLeadersRequest)
	c.async(func() {
		resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
		var parts map[string][]int32
		if req.Topics != nil {
			parts = map[string][]int32{}
			for _, t := range req.Topics {
				parts[t.Topic] = append(parts[t.Topic], t.Partitions...)
			}
		}
		var results map[string]map[int32]error
		var err error
		if n.cluster == nil {
			results = n.standaloneElection(parts)
		} else {
			timeout := max(time.Duration(req.TimeoutMillis)*time.Millisecond, time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			results, err = n.cluster.client.ElectLeaders(ctx, req.ElectionType == 1, parts)
			cancel()
		}
		if err != nil {
			resp.ErrorCode = errCode(err)
			if req.Version == 0 {
				// v0 has no top-level error: every partition carries it.
				results = map[string]map[int32]error{}
				for t, ps := range parts {
					results[t] = map[int32]error{}
					for _, p := range ps {
						results[t][p] = err
					}
				}
			}
		}
		for topic, ps := range results {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = topic
			for p, perr := range ps {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, errCode(perr), errMsg(perr)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.respond(resp)
	})
}

// standaloneElection: one broker leads everything, so nothing can move.
func (n *Node) standaloneElection(parts map[string][]int32) map[string]map[int32]error {
	out := map[string]map[int32]error{}
	for topic, ps := range parts {
		out[topic] = map[int32]error{}
		for _, p := range ps {
			if n.reg.partition(topic, p) == nil {
				out[topic][p] = kerr.UnknownTopicOrPartition
			} else {
				out[topic][p] = kerr.ElectionNotNeeded
			}
		}
	}
	return out
}
