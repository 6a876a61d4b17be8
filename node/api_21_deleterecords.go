// DeleteRecords (key 21), versions 0-2.
//
// Moves each partition's log start offset up to the requested offset and
// deletes the segments wholly below it; segstore persists the new start
// (log-start-offset checkpoint) before the answer, so it survives a crash.
// Offset -1 means the high watermark. An offset past the high watermark, or
// below -1, is OFFSET_OUT_OF_RANGE; one at or below the current log start
// changes nothing and succeeds (Kafka's maybeIncrementLogStartOffset). The
// answer's LowWatermark is the log start offset afterwards. Unknown topic or
// partition is UNKNOWN_TOPIC_OR_PARTITION; a partition whose log is still
// being created is LEADER_NOT_AVAILABLE; I/O failures are
// KAFKA_STORAGE_ERROR. Runs off the event loop (segment deletion and the
// checkpoint are disk I/O).
//
// Deviations: with one broker there is no purgatory wait for followers'
// low watermarks, so TimeoutMillis is never reached. A segment that still
// holds records at or above the new start stays on disk (as in Kafka) but
// its records below the start are no longer served. Fetches parked on the
// partition are woken, so one waiting below the new start answers
// OFFSET_OUT_OF_RANGE at once.
package node

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 21, min: 0, max: 2, handle: handleDeleteRecords})
}

func handleDeleteRecords(n *Node, c *call) {
	req := c.kreq.(*kmsg.DeleteRecordsRequest)
	c.async(func() {
		resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
		resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(req.Topics))
		for i := range req.Topics {
			rt := &req.Topics[i]
			out := &resp.Topics[i]
			out.Topic = rt.Topic
			out.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
			for j := range rt.Partitions {
				sp := &out.Partitions[j]
				sp.Default()
				sp.Partition = rt.Partitions[j].Partition
				sp.LowWatermark, sp.ErrorCode = n.deleteRecords(rt.Topic, sp.Partition, rt.Partitions[j].Offset)
			}
		}
		c.respond(resp)
	})
}

// deleteRecords moves one partition's log start to offset (-1: the high
// watermark) and returns the new log start, or -1 and an error code.
func (n *Node) deleteRecords(name string, idx int32, offset int64) (int64, int16) {
	p, l, code := n.leaderPartition(name, idx)
	if code != 0 {
		return -1, code
	}
	hw := p.hw.Load()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, kerr.OffsetOutOfRange.Code
	}
	start, err := l.DeleteRecords(offset)
	// Wake the fetches parked on p: one waiting at an offset now below the
	// log start answers OFFSET_OUT_OF_RANGE at once, not at its MaxWait. (Also
	// after an error: the start may have moved before the checkpoint failed.)
	p.notify()
	if err != nil {
		n.log.Error("delete records failed", "topic", name, "partition", idx, "offset", offset, "err", err)
		return -1, errCode(err)
	}
	n.log.Info("deleted records", "topic", name, "partition", idx, "log_start_offset", start)
	return start, 0
}
