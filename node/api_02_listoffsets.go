// ListOffsets (key 2), versions 1-8.
//
// Timestamps, answered as a Kafka broker without tiered storage answers them:
//   - -2 (earliest): the log start offset.
//   - -1 (latest): the high watermark for a consumer (ReplicaID -1); under
//     read_committed the last stable offset, which is the high watermark
//     while transactions are not served. Any other replica id (a follower's
//     broker id, or -2, the debugging id) gets the log end offset, as in
//     Kafka.
//   - -3 (max timestamp, v7+, KIP-734): the first record with the largest
//     timestamp.
//   - -4 (earliest local, v8+, KIP-405): the log start offset; nothing is
//     tiered.
//   - >= 0: the first record whose timestamp is at or after it.
//
// Lookups by timestamp (-3 and >= 0) answer only records below the high
// watermark (the log end offset for non-consumers); when none qualifies the
// partition answers offset -1 and timestamp -1 with no error, as Kafka does
// (kadm then lists the end offset). The timestamp is -1 for -2, -1 and -4.
// LeaderEpoch (v4+) is the epoch of the leader that wrote the answered
// offset, from the leader-epoch cache: the current epoch for -1, the first
// epoch for -2 when it covers the log start, the covering epoch otherwise.
//
// Errors per partition: a partition named twice in one request is
// INVALID_REQUEST for both entries; a special timestamp sent below the
// version that introduced it (or an unknown negative one) is
// UNSUPPORTED_VERSION (ReplicaManager.timestampMinSupportedVersion);
// unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; CurrentLeaderEpoch
// (v4+) older than the partition's is FENCED_LEADER_EPOCH, newer is
// UNKNOWN_LEADER_EPOCH; a partition whose log is still being created is
// LEADER_NOT_AVAILABLE; a failing log is KAFKA_STORAGE_ERROR.
//
// Earliest and latest are answered on the event loop; a request holding a
// lookup by timestamp, which reads segment files, runs on its own goroutine.
// Deviations: v0 (MaxNumOffsets, offsets by segment) is not served — Kafka 4
// dropped it too; OFFSET_NOT_AVAILABLE never arises (one broker, the high
// watermark never lags a new leader's epoch start).
package node

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 2, min: 1, max: 8, handle: handleListOffsets})
}

// listOffsetsMinVersion is the request version each special timestamp
// needs.
var listOffsetsMinVersion = map[int64]int16{-1: 1, -2: 1, -3: 7, -4: 8}

func handleListOffsets(n *Node, c *call) {
	req := c.kreq.(*kmsg.ListOffsetsRequest)
	for i := range req.Topics {
		for _, rp := range req.Topics[i].Partitions {
			if rp.Timestamp >= 0 || rp.Timestamp == -3 {
				c.async(func() { c.respond(n.listOffsets(req)) })
				return
			}
		}
	}
	c.respond(n.listOffsets(req))
}

func (n *Node) listOffsets(req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	type tp struct {
		t string
		p int32
	}
	seen := map[tp]int{}
	for i := range req.Topics {
		for _, rp := range req.Topics[i].Partitions {
			seen[tp{req.Topics[i].Topic, rp.Partition}]++
		}
	}
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		out := &resp.Topics[i]
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &out.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			if seen[tp{rt.Topic, rp.Partition}] > 1 {
				sp.ErrorCode = kerr.InvalidRequest.Code
				continue
			}
			sp.ErrorCode = n.listPartitionOffset(req, rt.Topic, rp, sp)
		}
	}
	return resp
}

// listPartitionOffset fills sp for one partition and returns its error code.
func (n *Node) listPartitionOffset(req *kmsg.ListOffsetsRequest, name string,
	rp *kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) int16 {
	if minV, ok := listOffsetsMinVersion[rp.Timestamp]; rp.Timestamp < 0 && (!ok || req.Version < minV) {
		return kerr.UnsupportedVersion.Code
	}
	p := n.reg.partition(name, rp.Partition)
	if p == nil {
		return kerr.UnknownTopicOrPartition.Code
	}
	if code := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); code != 0 {
		return code
	}
	l := p.getLog()
	if code := n.leaderCode(p); code != 0 || l == nil {
		return max(code, kerr.LeaderNotAvailable.Code)
	}
	if err := l.Err(); err != nil {
		return errCode(err)
	}
	offs := l.Offsets()
	// The last offset a lookup may answer (exclusive): a consumer sees up
	// to the high watermark (= the last stable offset without
	// transactions); followers and the debugging id up to the log end.
	bound := offs.End
	if req.ReplicaID == -1 {
		bound = min(p.hw.Load(), offs.End)
	}
	switch rp.Timestamp {
	case -1:
		sp.Offset, sp.LeaderEpoch = bound, p.leaderEpoch()
		return 0
	case -2:
		entries, _ := epochHistory(p, l)
		sp.Offset = offs.Start
		if len(entries) > 0 && entries[0].StartOffset <= offs.Start {
			sp.LeaderEpoch = entries[0].Epoch
		}
		return 0
	case -4:
		entries, _ := epochHistory(p, l)
		sp.Offset, sp.LeaderEpoch = offs.Start, epochForOffset(entries, offs.Start)
		return 0
	}
	var off, ts int64
	var found bool
	var err error
	if rp.Timestamp == -3 {
		off, ts, found, err = l.MaxTimestamp()
	} else {
		off, ts, found, err = l.OffsetForTime(rp.Timestamp)
	}
	if err != nil {
		n.log.Error("list offsets: lookup by timestamp failed", "topic", name, "partition", rp.Partition,
			"timestamp", rp.Timestamp, "err", err)
		return errCode(err)
	}
	if found && off < bound {
		entries, _ := epochHistory(p, l)
		sp.Offset, sp.Timestamp, sp.LeaderEpoch = off, ts, epochForOffset(entries, off)
	}
	return 0
}
