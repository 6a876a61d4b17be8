package repl

import (
	"fmt"
	"sync/atomic"

	"github.com/sluicemq/sluice/segstore"
)

// FollowerLog is what a follower needs of its local log. *segstore.Log
// satisfies it.
type FollowerLog interface {
	Offsets() segstore.Offsets
	Epochs() []segstore.EpochEntry
	TruncateTo(offset int64) error
	AppendReplica(buf []byte, done func(segstore.AppendResult)) (int64, error)
}

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	BrokerID int32
	// UseEpochQuery makes the follower reconcile with OffsetForLeaderEpoch
	// before its first fetch (for a leader whose Fetch cannot report a
	// diverging epoch, Fetch < v12). Otherwise every fetch carries
	// LastFetchedEpoch and the leader's DivergingEpoch answer drives the
	// truncation, as Kafka does since 2.7.
	UseEpochQuery bool
}

// Request is what the follower sends next for this partition: an
// OffsetForLeaderEpoch query (EpochQuery) or a fetch.
type Request struct {
	Leader      int32
	LeaderEpoch int32 // CurrentLeaderEpoch
	EpochQuery  bool
	// Epoch is the epoch asked about in an EpochQuery.
	Epoch int32
	// FetchOffset and LastFetchedEpoch are the fetch's.
	FetchOffset      int64
	LastFetchedEpoch int32
}

// FetchResponse is the leader's answer to a fetch for this partition.
type FetchResponse struct {
	Err            error
	HighWatermark  int64
	LogStartOffset int64
	Diverging      *EpochEnd
	Records        []byte // whole batches from the fetch offset on
}

// Follower is a follower replica's fetcher logic for one partition and one
// leader epoch: what to ask the leader next, how to truncate on its answer,
// how to append what it sends and where the follower's HW is. A new leader
// or epoch means a new Follower over the same log. On start it does not cut
// its log to the HW (KIP-101): the leader's epochs decide what goes.
//
// Concurrency: Next, HandleEpochEnd and HandleFetch are called from one
// goroutine (the fetcher of the leader broker), and HandleFetch blocks until
// the replicated append is written; HighWatermark is safe for concurrent use.
type Follower struct {
	cfg         FollowerConfig
	log         FollowerLog
	leader      int32
	epoch       int32
	querying    bool // EpochQuery mode, truncation not yet done
	hw          atomic.Int64
	replyWaiter chan segstore.AppendResult
}

// NewFollower starts following leader in leaderEpoch; hw is the broker's
// last known HW for the partition (capped at the LEO).
func NewFollower(cfg FollowerConfig, log FollowerLog, leader, leaderEpoch int32, hw int64) *Follower {
	f := &Follower{cfg: cfg, log: log, leader: leader, epoch: leaderEpoch,
		querying: cfg.UseEpochQuery && len(log.Epochs()) > 0, replyWaiter: make(chan segstore.AppendResult, 1)}
	f.hw.Store(min(hw, log.Offsets().End))
	return f
}

// Leader returns the leader and epoch followed.
func (f *Follower) Leader() (id, epoch int32) { return f.leader, f.epoch }

// HighWatermark is min(leader's HW, own LEO) as of the last fetch. Safe for
// concurrent use.
func (f *Follower) HighWatermark() int64 { return f.hw.Load() }

// Next says what to send to the leader.
func (f *Follower) Next() Request {
	entries := f.log.Epochs()
	r := Request{Leader: f.leader, LeaderEpoch: f.epoch, LastFetchedEpoch: LastEpoch(entries)}
	if f.querying {
		r.EpochQuery, r.Epoch = true, r.LastFetchedEpoch
		return r
	}
	r.FetchOffset = f.log.Offsets().End
	return r
}

// stale reports whether an answer to req no longer fits the follower's state
// (an older request, or the log changed since): it is then dropped.
func (f *Follower) stale(req Request) bool {
	if req.Leader != f.leader || req.LeaderEpoch != f.epoch || req.EpochQuery != f.querying {
		return true
	}
	if req.EpochQuery {
		return req.Epoch != LastEpoch(f.log.Epochs())
	}
	return req.FetchOffset != f.log.Offsets().End
}

// HandleEpochEnd applies the leader's OffsetForLeaderEpoch answer to req:
// it truncates as DecideTruncation says and, once done, switches to
// fetching. err is the answer's error (the node retries after a backoff or
// waits for new metadata). Stale answers are ignored.
func (f *Follower) HandleEpochEnd(req Request, ans EpochEnd, err error) error {
	if err != nil || f.stale(req) {
		return err
	}
	done, terr := f.truncate(ans)
	if terr == nil && done {
		f.querying = false
	}
	return terr
}

// HandleFetch applies the leader's answer to the fetch req: a diverging
// epoch truncates, records are appended as the leader holds them (blocking
// until written), and the HW becomes min(leader's HW, own LEO). Errors are
// the response's (FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER: wait for new
// metadata; OFFSET_OUT_OF_RANGE, for which HandleOutOfRange decides) or the
// log's. Stale answers are ignored.
func (f *Follower) HandleFetch(req Request, resp FetchResponse) error {
	if resp.Err != nil {
		return resp.Err
	}
	if f.stale(req) {
		return nil
	}
	if resp.Diverging != nil {
		_, err := f.truncate(*resp.Diverging)
		return err
	}
	if len(resp.Records) > 0 {
		if _, err := f.log.AppendReplica(resp.Records, func(r segstore.AppendResult) { f.replyWaiter <- r }); err != nil {
			return fmt.Errorf("replicate from broker %d at %d: %w", f.leader, req.FetchOffset, err)
		}
		if r := <-f.replyWaiter; r.Err != nil {
			return fmt.Errorf("replicate from broker %d at %d: %w", f.leader, req.FetchOffset, r.Err)
		}
	}
	f.hw.Store(min(resp.HighWatermark, f.log.Offsets().End))
	return nil
}

// fullTruncater is the optional part of a FollowerLog that empties it and
// restarts it at an offset (*segstore.Log has it). Without it the follower
// cannot move past a leader's log start and keeps retrying.
type fullTruncater interface {
	TruncateFullyAndStartAt(offset int64) error
}

// HandleOutOfRange applies the leader's OFFSET_OUT_OF_RANGE answer to the
// fetch req, as DecideOutOfRange says, given the leader's log start (the
// answer's LogStartOffset) and end (-1 where unknown; sluice's Fetch answer
// does not carry it). A log wholly below the leader's start is truncated
// fully and restarts there, with the HW at that offset; a cut to the
// leader's end moves the HW to min(HW, LEO). A cut below the log start is a
// full truncation too (Kafka's truncateTo). OutOfRangeRetry means nothing
// was done, also for a stale answer: the caller backs off with the error.
// Errors are the log's. For the fetcher goroutine, like HandleFetch.
func (f *Follower) HandleOutOfRange(req Request, leaderStart, leaderEnd int64) (OutOfRange, error) {
	if f.stale(req) || req.EpochQuery {
		return OutOfRange{Action: OutOfRangeRetry, Offset: req.FetchOffset}, nil
	}
	d := DecideOutOfRange(req.FetchOffset, leaderStart, leaderEnd)
	offs := f.log.Offsets()
	var err error
	switch {
	case d.Action == OutOfRangeRetry:
		return d, nil
	case d.Action == OutOfRangeStartAt || d.Offset < offs.Start:
		d.Action = OutOfRangeStartAt
		ft, ok := f.log.(fullTruncater)
		if !ok {
			return d, fmt.Errorf("restart the log at %d, broker %d's log start: the log cannot truncate fully", d.Offset, f.leader)
		}
		if err = ft.TruncateFullyAndStartAt(d.Offset); err == nil {
			f.hw.Store(d.Offset)
			return d, nil
		}
	default:
		err = f.log.TruncateTo(d.Offset)
	}
	if err != nil {
		return d, fmt.Errorf("%s to %d after OFFSET_OUT_OF_RANGE at %d from broker %d (its log start %d, end %d): %w",
			d.Action, d.Offset, req.FetchOffset, f.leader, leaderStart, leaderEnd, err)
	}
	f.hw.Store(min(f.hw.Load(), f.log.Offsets().End))
	return d, nil
}

// truncate cuts the log where the leader's answer says; done is false when
// the follower must ask again about an older epoch.
func (f *Follower) truncate(ans EpochEnd) (done bool, err error) {
	offs := f.log.Offsets()
	t := DecideTruncation(f.log.Epochs(), offs.Start, offs.End, ans)
	if t.Offset < offs.End {
		if err := f.log.TruncateTo(t.Offset); err != nil {
			return false, fmt.Errorf("truncate to %d after leader %d's epoch %d ends at %d: %w",
				t.Offset, f.leader, ans.Epoch, ans.EndOffset, err)
		}
	}
	f.hw.Store(min(f.hw.Load(), f.log.Offsets().End))
	return t.Done, nil
}
