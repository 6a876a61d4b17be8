package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/repl"
)

// answer applies a Fetch response to the partitions of batch it names.
// Partitions it leaves out are simply fetched again next round.
func (fe *fetcher) answer(batch []sent, fr *kmsg.FetchResponse) {
	idx := make(map[topicPart]int, len(batch))
	for i, s := range batch {
		idx[topicPart{s.st.p.topic.name, s.st.p.index}] = i
	}
	for ti := range fr.Topics {
		rt := &fr.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			k := topicPart{rt.Topic, rp.Partition}
			i, ok := idx[k]
			if !ok {
				continue // not asked, or named twice: only the first counts
			}
			delete(idx, k)
			fe.apply(batch[i], rp)
		}
	}
}

// waitForMetadata are the errors a leader gives while it has not applied
// the metadata this broker acts on (or has moved past it): retry after a
// backoff; a leadership change brings a new Follower through follow.
var waitForMetadata = []error{
	kerr.NotLeaderForPartition, kerr.FencedLeaderEpoch, kerr.UnknownLeaderEpoch,
	kerr.UnknownTopicOrPartition, kerr.LeaderNotAvailable,
}

// apply hands one partition's answer to its Follower, unless the partition
// was unfollowed or re-followed since the request went out.
func (fe *fetcher) apply(s sent, rp *kmsg.FetchResponseTopicPartition) {
	st := s.st
	if rp.ErrorCode != 0 {
		err := kerr.ErrorForCode(rp.ErrorCode)
		if errors.Is(err, kerr.OffsetOutOfRange) && fe.outOfRange(s, rp) {
			return
		}
		fe.partitionFailed(st, err)
		return
	}
	resp := repl.FetchResponse{
		HighWatermark: rp.HighWatermark, LogStartOffset: rp.LogStartOffset,
		Records: wholeBatches(rp.RecordBatches),
	}
	if rp.DivergingEpoch.Epoch >= 0 {
		resp.Diverging = &repl.EpochEnd{Epoch: rp.DivergingEpoch.Epoch, EndOffset: rp.DivergingEpoch.EndOffset}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return
	}
	if err := st.f.HandleFetch(s.req, resp); err != nil {
		fe.partitionFailed(st, err)
		return
	}
	st.fails = 0
	st.p.setHW(st.f.HighWatermark())
	if l := st.p.getLog(); l != nil {
		st.lag.Store(max(0, rp.HighWatermark-l.Offsets().End))
	}
}

// outOfRange hands the leader's OFFSET_OUT_OF_RANGE to the Follower, which
// restarts a log lying wholly below the leader's log start at that start
// (Kafka's truncateFullyAndStartAt). It reports whether the answer is dealt
// with; false leaves it to partitionFailed (back off, fetch again). The
// leader's end is not in a Fetch answer: -1.
func (fe *fetcher) outOfRange(s sent, rp *kmsg.FetchResponseTopicPartition) bool {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return true
	}
	leo := int64(-1)
	if l := st.p.getLog(); l != nil {
		leo = l.Offsets().End
	}
	d, err := st.f.HandleOutOfRange(s.req, rp.LogStartOffset, -1)
	if err != nil {
		fe.partitionFailed(st, err)
		return true
	}
	if d.Action == repl.OutOfRangeRetry {
		return false
	}
	st.fails, st.oorLogged = 0, false
	st.p.setHW(st.f.HighWatermark())
	switch d.Action {
	case repl.OutOfRangeStartAt:
		fe.log.Info(fmt.Sprintf("replica below the leader's log start: truncated fully, restarting at %d", d.Offset),
			"topic", st.p.topic.name, "partition", st.p.index, "leader", fe.leader, "old_log_end", leo)
	default:
		fe.log.Warn(fmt.Sprintf("replica past the leader's log end: truncated to %d", d.Offset),
			"topic", st.p.topic.name, "partition", st.p.index, "leader", fe.leader, "old_log_end", leo)
	}
	return true
}

// metadataRetryFirst is the first backoff after a waitForMetadata error:
// right after a leadership change the follower often applies it a hair
// before the leader, which then catches up within milliseconds. Each such
// error in a row doubles it, up to replica.fetch.backoff.ms.
const metadataRetryFirst = 10 * time.Millisecond

// partitionFailed backs one partition off after an error in its answer or
// in applying it.
func (fe *fetcher) partitionFailed(st *followState, err error) {
	fe.r.failures.Inc()
	backoff := fe.r.cfg.backoff
	if isAny(err, waitForMetadata) {
		backoff = min(backoff, metadataRetryFirst<<min(st.fails, 16))
		st.fails++
	}
	st.backoffUntil = time.Now().Add(backoff)
	switch {
	case errors.Is(err, kerr.OffsetOutOfRange):
		// Not below the leader's log start (outOfRange restarts those):
		// its start moved while it answered, or its log ends before ours,
		// which the epochs should have prevented and which the answer
		// cannot show (it carries the HW, not the end). Retry.
		if !st.oorLogged {
			st.oorLogged = true
			fe.log.Warn("replica fetch offset out of range and not below the leader's log start, retrying",
				"topic", st.p.topic.name, "partition", st.p.index, "err", err)
		}
	case isAny(err, waitForMetadata):
		fe.logOnce(slog.LevelInfo, "leader refused the replica fetch, waiting for metadata", st, err)
	default:
		fe.logOnce(slog.LevelWarn, "replica fetch for partition failed, retrying after backoff", st, err)
	}
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
