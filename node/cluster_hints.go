package node

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Leader hints (KIP-951): a NOT_LEADER_OR_FOLLOWER answer to a produce
// (v10+) or fetch (v16+) names the partition's current leader and epoch and
// the leader's endpoint, so a client moves the partition at once instead of
// waiting for its next metadata refresh (franz-go refreshes at most every
// 5 s by default, which would dominate failover time).

// leaderHint fills out's CurrentLeader when it answers NOT_LEADER_OR_FOLLOWER
// and the metadata knows a leader. Safe for concurrent use on distinct outs.
func (n *Node) leaderHint(t *topic, idx int32, out *kmsg.ProduceResponseTopicPartition) {
	if n.cluster == nil || t == nil || out.ErrorCode != kerr.NotLeaderForPartition.Code {
		return
	}
	parts := n.reg.partitions(t)
	if idx < 0 || int(idx) >= len(parts) {
		return
	}
	st := parts[idx].state()
	if st.Leader >= 0 {
		out.CurrentLeader.LeaderID, out.CurrentLeader.LeaderEpoch = st.Leader, st.LeaderEpoch
	}
}

// addLeaderHints adds the endpoints of every leader a partition's answer
// names (NodeEndpoints), once each. Runs when every partition is answered.
func (n *Node) addLeaderHints(resp *kmsg.ProduceResponse) {
	if n.cluster == nil || resp.Version < 10 {
		return
	}
	seen := map[int32]bool{}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			id := resp.Topics[i].Partitions[j].CurrentLeader.LeaderID
			if resp.Topics[i].Partitions[j].ErrorCode == 0 || id < 0 || seen[id] {
				continue
			}
			seen[id] = true
			for _, b := range n.brokers() {
				if b.id == id {
					rb := kmsg.NewProduceResponseBroker()
					rb.NodeID, rb.Host, rb.Port, rb.Rack = b.id, b.host, b.port, b.rack
					resp.Brokers = append(resp.Brokers, rb)
				}
			}
		}
	}
}
