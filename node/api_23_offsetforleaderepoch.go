// OffsetForLeaderEpoch (key 23), versions 0-4.
//
// For each partition, the end offset of the requested leader epoch as
// Kafka's leader-epoch cache answers it (LeaderEpochFileCache.endOffsetFor):
// the current epoch ends at the log end offset; an older epoch ends where
// the next known epoch starts, and the answer names the largest known epoch
// at or below the requested one (v1+); an epoch older than the whole
// history answers itself with the first known epoch's start; an epoch newer
// than the current one, or -1, answers epoch -1 and offset -1 with no error
// (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET). The current epoch is in the
// history from the moment this broker leads the partition, even before a
// batch was written in it, as on a Kafka leader.
//
// CurrentLeaderEpoch (v2+) is checked as in Kafka: older than the
// partition's is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH. Unknown
// topic or partition is UNKNOWN_TOPIC_OR_PARTITION; a partition whose log is
// still being created is LEADER_NOT_AVAILABLE. ReplicaID (v3+) may be a
// consumer (-1), the debugging id (-2) or a follower's broker id; this
// broker leads every partition, so all are answered alike.
//
// Deviations: with one broker the log end offset equals the high watermark,
// so a consumer can never be told an end offset beyond what it may fetch.
package node

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 23, min: 0, max: 4, handle: handleOffsetForLeaderEpoch})
}

func handleOffsetForLeaderEpoch(n *Node, c *call) {
	req := c.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		out := &resp.Topics[i]
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &out.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, l, code := n.leaderPartition(rt.Topic, rp.Partition)
			if p != nil && req.Version >= 2 {
				if ec := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); ec != 0 {
					code = ec
				}
			}
			if code != 0 {
				sp.ErrorCode = code
				continue
			}
			if err := l.Err(); err != nil {
				sp.ErrorCode = errCode(err)
				continue
			}
			entries, leo := epochHistory(p, l)
			sp.LeaderEpoch, sp.EndOffset = endOffsetForEpoch(entries, rp.LeaderEpoch, leo)
		}
	}
	c.respond(resp)
}
