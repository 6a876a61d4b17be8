package node

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/segstore"
)

// Helpers shared by the partition-level admin APIs (ListOffsets,
// OffsetForLeaderEpoch, DeleteRecords, DescribeLogDirs).

// leaderPartition finds a partition this broker leads for a request, or the
// error code to answer: UNKNOWN_TOPIC_OR_PARTITION for a topic or index this
// broker does not know, LEADER_NOT_AVAILABLE while the partition's log is
// still being created.
func (n *Node) leaderPartition(name string, idx int32) (*partition, *segstore.Log, int16) {
	p := n.reg.partition(name, idx)
	if p == nil {
		return nil, nil, kerr.UnknownTopicOrPartition.Code
	}
	l := p.getLog()
	if code := n.leaderCode(p); code != 0 || l == nil {
		return p, nil, max(code, kerr.LeaderNotAvailable.Code)
	}
	return p, l, 0
}

// checkLeaderEpoch is Kafka's Partition.checkCurrentLeaderEpoch (KIP-320): a
// client's current leader epoch older than ours is FENCED_LEADER_EPOCH, a
// newer one UNKNOWN_LEADER_EPOCH (this broker has not caught up with it); -1
// skips the check.
func checkLeaderEpoch(p *partition, requested int32) int16 {
	if requested == -1 {
		return 0
	}
	cur := p.leaderEpoch()
	switch {
	case requested < cur:
		return kerr.FencedLeaderEpoch.Code
	case requested > cur:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// epochHistory is the partition's leader-epoch cache as Kafka's leader has
// it: segstore records an epoch when its first batch is appended, while a
// Kafka leader records its epoch at the log end offset the moment it becomes
// leader (Partition.makeLeader), so the current epoch is in the history even
// before anything was produced in it.
func epochHistory(p *partition, l *segstore.Log) ([]segstore.EpochEntry, int64) {
	entries := l.Epochs()
	leo := l.Offsets().End
	cur := p.leaderEpoch()
	if k := len(entries); cur >= 0 && (k == 0 || entries[k-1].Epoch < cur) {
		entries = append(entries, segstore.EpochEntry{Epoch: cur, StartOffset: leo})
	}
	return entries, leo
}

// epochForOffset is the epoch of the entry covering offset (the last one
// starting at or below it), -1 when offset precedes the history.
func epochForOffset(entries []segstore.EpochEntry, offset int64) int32 {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].StartOffset <= offset {
			return entries[i].Epoch
		}
	}
	return -1
}

// endOffsetForEpoch is Kafka's LeaderEpochFileCache.endOffsetFor: the
// largest epoch at or below requested and the offset where it ended (the
// next epoch's start, or the log end offset for the latest epoch). A
// requested epoch older than the whole history answers itself with the
// first known epoch's start offset (the data before it is gone, so a
// follower truncates to there); an undefined (-1) epoch, or one newer than
// every known epoch, answers (-1, -1).
//
// segstore's Log.EndOffsetForEpoch answers the first case with (-1, -1) and
// the last with the latest epoch; OffsetForLeaderEpoch wants Kafka's answers,
// which replicas and clients act on.
func endOffsetForEpoch(entries []segstore.EpochEntry, requested int32, leo int64) (int32, int64) {
	k := len(entries)
	switch {
	case requested < 0 || k == 0:
		return -1, -1
	case entries[k-1].Epoch == requested:
		return requested, leo
	case entries[k-1].Epoch < requested:
		return -1, -1
	}
	// higher: the first entry with a larger epoch; it exists (see above).
	h := 0
	for entries[h].Epoch <= requested {
		h++
	}
	if h == 0 {
		return requested, entries[0].StartOffset
	}
	return entries[h-1].Epoch, entries[h].StartOffset
}
