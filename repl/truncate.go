package repl

import "github.com/sluicemq/sluice/segstore"

// Truncation is a follower's decision after the leader told it where an
// epoch ends.
type Truncation struct {
	// Offset is where the follower's log must be cut (TruncateTo); equal to
	// the LEO when nothing is to be cut.
	Offset int64
	// Done is false when the follower only walked back to an older epoch of
	// its own and must ask the leader again, for that epoch.
	Done bool
}

// endOffsetFor is EndOffsetForEpoch over a follower's epoch entries: the
// largest epoch <= epoch and where it ends; (-1, -1) if none.
func endOffsetFor(entries []segstore.EpochEntry, leo int64, epoch int32) (int32, int64) {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Epoch <= epoch {
			if i == len(entries)-1 {
				return entries[i].Epoch, leo
			}
			return entries[i].Epoch, entries[i+1].StartOffset
		}
	}
	return -1, -1
}

// LastEpoch is the epoch of the newest entry, -1 for none: what a follower
// sends as LastFetchedEpoch or asks OffsetForLeaderEpoch about.
func LastEpoch(entries []segstore.EpochEntry) int32 {
	if len(entries) == 0 {
		return -1
	}
	return entries[len(entries)-1].Epoch
}

// DecideTruncation is Kafka's follower truncation rule (KIP-101/KIP-279):
// given the follower's epoch entries, log start and LEO, and the leader's
// answer (the largest epoch it has at or below the one asked, and where
// that epoch ends on the leader — from OffsetForLeaderEpoch or Fetch's
// DivergingEpoch):
//
//   - the follower has the answered epoch: cut to min(leader's end, own end
//     of that epoch, LEO); done — below that the logs agree;
//   - the follower's nearest epoch below the answered one is older: cut to
//     that epoch's own end (the leader's answer tells nothing about it) and
//     ask again with it — the epoch-by-epoch walk back;
//   - the follower has no epoch at or below the answer: its epochs are all
//     ones the leader never had, so cut to min(leader's end, start of the
//     follower's first epoch, LEO); done. (Kafka cuts to min(leader's end,
//     LEO) only, assuming a follower without epoch history; a follower that
//     led an epoch of its own on an empty log would then never converge —
//     found by the randomized simulation.)
//   - the leader knows no epoch at or below the one asked (-1): nothing the
//     follower holds is vouched for, cut to the log start; done.
//
// It never falls back to the high watermark: a follower's HW may lag
// records that are committed (KIP-101's first scenario). Pure function.
func DecideTruncation(entries []segstore.EpochEntry, logStart, leo int64, ans EpochEnd) Truncation {
	if ans.Epoch < 0 || ans.EndOffset < 0 {
		return Truncation{Offset: min(logStart, leo), Done: true}
	}
	ep, end := endOffsetFor(entries, leo, ans.Epoch)
	switch {
	case ep < 0:
		off := min(ans.EndOffset, leo)
		if len(entries) > 0 {
			off = min(off, entries[0].StartOffset)
		}
		return Truncation{Offset: off, Done: true}
	case ep != ans.Epoch:
		return Truncation{Offset: min(end, leo), Done: false}
	default:
		return Truncation{Offset: min(end, ans.EndOffset, leo), Done: true}
	}
}

// OutOfRangeAction is what a follower does after its leader answered a
// fetch with OFFSET_OUT_OF_RANGE.
type OutOfRangeAction uint8

const (
	// OutOfRangeRetry: nothing to do locally; the error stands and the
	// follower fetches again after a backoff (the leader's log start moved
	// while the answer was read, or the answer says too little).
	OutOfRangeRetry OutOfRangeAction = iota
	// OutOfRangeTruncate: the leader's log ends below the fetch offset; cut
	// the log to Offset, the leader's end.
	OutOfRangeTruncate
	// OutOfRangeStartAt: the follower's whole log lies below the leader's
	// log start; empty it and restart it at Offset, the leader's log start
	// (segstore.Log.TruncateFullyAndStartAt).
	OutOfRangeStartAt
)

func (a OutOfRangeAction) String() string {
	switch a {
	case OutOfRangeRetry:
		return "retry"
	case OutOfRangeTruncate:
		return "truncate"
	case OutOfRangeStartAt:
		return "truncate fully"
	}
	return "unknown"
}

// OutOfRange is a follower's decision after OFFSET_OUT_OF_RANGE.
type OutOfRange struct {
	Action OutOfRangeAction
	// Offset is where the log is cut (OutOfRangeTruncate) or restarts
	// (OutOfRangeStartAt); the fetch offset for OutOfRangeRetry.
	Offset int64
}

// DecideOutOfRange is Kafka's follower rule for OFFSET_OUT_OF_RANGE
// (AbstractFetcherThread.fetchOffsetAndTruncate), given the fetch offset
// the follower sent (its LEO) and the leader's log start and end offsets,
// each -1 when not known:
//
//   - the leader's log ends below the fetch offset: cut to the leader's end
//     (only a follower without epoch history gets here: otherwise the
//     leader's diverging-epoch answer comes first);
//   - the leader's log starts past the fetch offset: everything the
//     follower holds is below it; truncate fully and restart at the
//     leader's log start;
//   - otherwise the offset is in range now (the leader's start moved while
//     it answered): retry.
//
// The leader's HW is not a stand-in for its end: the leader's log start in
// an answer may be older than the refusal (DeleteRecords between the
// leader's checks and its read), so "not below the start" does not prove
// "past the end", and cutting to the HW would then drop records the leader
// still holds. Pure function.
func DecideOutOfRange(fetchOffset, leaderStart, leaderEnd int64) OutOfRange {
	switch {
	case leaderEnd >= 0 && leaderEnd < fetchOffset:
		return OutOfRange{Action: OutOfRangeTruncate, Offset: leaderEnd}
	case leaderStart > fetchOffset:
		return OutOfRange{Action: OutOfRangeStartAt, Offset: leaderStart}
	}
	return OutOfRange{Action: OutOfRangeRetry, Offset: fetchOffset}
}
