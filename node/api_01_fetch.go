// Fetch (key 1), versions 4-16.
//
// Each partition's answer is whole v2 RecordBatches from the offset asked for,
// up to the high watermark, sent straight from the segment file with sendfile
// (fetchframe.go frames the response around the file ranges). Request
// MaxBytes bounds the whole response and PartitionMaxBytes each partition,
// except that the first batch of the first partition with data is sent even
// when it is larger (KIP-74). When less than MinBytes is ready and
// MaxWaitMillis > 0 the fetch parks until an append, DeleteRecords or a
// topic deletion touches one of its partitions, or the wait ends, then reads
// again. Fetch sessions (KIP-227, v7+) are served as Kafka does
// (fetchsession.go); sessions opened at v13+ name topics by id. Errors are per partition: unknown topic
// (UNKNOWN_TOPIC_ID for ids), offset out of range, fenced or unknown leader
// epoch (v9+ CurrentLeaderEpoch), storage errors. A v12+ LastFetchedEpoch is
// checked as Kafka's Partition.readRecords does, against the epoch history
// OffsetForLeaderEpoch answers from (epochHistory): the fetcher's epoch ended
// before its fetch offset, or only an older epoch is known, gives a
// DivergingEpoch answer; an epoch the history cannot place (newer than the
// current one) is OFFSET_OUT_OF_RANGE; the current epoch ends at the log end
// offset even before a batch was written in it.
//
// As in Kafka, an offset above the high watermark but not past the log end
// (written, not yet committed) reads nothing rather than OFFSET_OUT_OF_RANGE;
// MaxWaitMillis counts from when the request was read.
//
// Deviations:
//   - No transactions yet: the last stable offset is the high watermark, so
//     read_committed reads up to the high watermark and gets an empty aborted
//     transactions list (read_uncommitted gets null, as in Kafka).
//   - Follower fetches (replica id >= 0) are served only in cluster mode, by
//     the partition's leader to a broker in its replica set; otherwise they
//     are refused as Kafka refuses a replica id outside the replica set:
//     UNKNOWN_LEADER_EPOCH when the request carries a leader epoch, else
//     NOT_LEADER_OR_FOLLOWER.
//   - No preferred read replica (KIP-392; always -1), no client quotas
//     (throttle 0), no snapshot id; the ClusterID and ReplicaState tags are
//     ignored. Replica fetches obey the leader replication throttle
//     (replthrottle.go): a throttled partition over quota reads nothing.
//   - fetch.max.bytes (55 MiB) and max.incremental.fetch.session.cache.slots
//     (1000) are Kafka's defaults and not configurable yet. Session eviction
//     follows Kafka's rules without its follower privilege.
//
// A fetch parked when its connection closes ends at once (ConnClosed),
// without reading again, answering or opening a fetch session.
package node

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/repl"
	"github.com/sluicemq/sluice/segstore"
)

func init() {
	registerAPI(&apiDef{key: 1, min: 4, max: 16, handle: handleFetch})
}

// fetchMaxBytes is Kafka's fetch.max.bytes default: the broker's cap on a
// response's records.
const fetchMaxBytes = 55 << 20

// fetchItem is one partition of a fetch: what was asked, and (fetchResult)
// what the last read found.
type fetchItem struct {
	topic            string
	topicID          [16]byte
	partition        int32
	offset           int64
	maxBytes         int32
	curEpoch         int32
	lastFetchedEpoch int32
	sp               *sessPart  // the session's entry (incremental fetches)
	leo              int64      // follower fetches: the log end the last read stopped at
	p                *partition // resolved by the last read, nil if unknown
	leaderThrottled  bool       // what the last read found counts against the leader quota
	fetchResult
}

// Fetch session modes of a request.
const (
	sessNone = iota // sessionless (v<7, epoch -1) or answered without a session
	sessNew         // epoch 0: open a session when answering
	sessIncr        // epoch > 0: answer what changed
)

// fetchOp is one fetch request being served. run reads and either answers
// or parks the op; a wake or the timer resumes it on another goroutine.
type fetchOp struct {
	n         *Node
	c         *call
	version   int16
	minBytes  int32
	maxBytes  int64
	deadline  time.Time
	canWait   bool
	follower  bool
	replicaID int32
	readComm  bool
	items     []fetchItem
	itemsBuf  *[]fetchItem // pooled backing of items

	sessMode  int
	sess      *fetchSession
	sessEpoch int32
	topErr    int16
	final     bool        // answer after the next read whatever it finds
	gone      atomic.Bool // the connection closed while parked

	state atomic.Int32
	// mu is held while parking, so a resume waits until parking finished.
	mu      sync.Mutex
	watched []*partition
	timer   *time.Timer

	// Replica fetches: the throttle settings of the last read (nil: none)
	// and when the leader quota frees, if the last read held a partition
	// back for it (zero: none did); park wakes the op then to read again.
	throttle      *throttleView
	throttleUntil time.Time
}

var fetchItemPool = sync.Pool{New: func() any { s := make([]fetchItem, 0, 16); return &s }}

func handleFetch(n *Node, c *call) {
	req := c.kreq.(*kmsg.FetchRequest)
	op := &fetchOp{
		n: n, c: c, version: req.Version, minBytes: req.MinBytes,
		maxBytes: int64(min(req.MaxBytes, fetchMaxBytes)),
		deadline: c.start.Add(time.Duration(req.MaxWaitMillis) * time.Millisecond),
		canWait:  req.MaxWaitMillis > 0,
		readComm: req.IsolationLevel == 1,
	}
	replica := req.ReplicaID
	if req.Version >= 15 {
		replica = req.ReplicaState.ID
	}
	op.follower, op.replicaID = replica >= 0, replica
	op.itemsBuf = fetchItemPool.Get().(*[]fetchItem)
	op.items = (*op.itemsBuf)[:0]
	fs := n.fetch
	switch {
	case req.Version < 7:
	case req.SessionEpoch == -1:
		if req.SessionID != 0 {
			fs.closeSession(req.SessionID)
		}
	case req.SessionEpoch == 0:
		if req.SessionID != 0 {
			fs.closeSession(req.SessionID)
		}
		op.sessMode = sessNew
	default:
		op.sess, op.sessEpoch, op.items, op.topErr = fs.sessionFor(req, op.items)
		if op.topErr != 0 || op.sess == nil {
			op.answer()
			return
		}
		op.sessMode = sessIncr
	}
	if op.sessMode != sessIncr {
		for i := range req.Topics {
			rt := &req.Topics[i]
			for j := range rt.Partitions {
				rp := &rt.Partitions[j]
				op.items = append(op.items, fetchItem{
					topic: rt.Topic, topicID: rt.TopicID, partition: rp.Partition,
					offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
					curEpoch: rp.CurrentLeaderEpoch, lastFetchedEpoch: rp.LastFetchedEpoch,
				})
			}
		}
	}
	op.run()
}

// run reads and answers, or parks until there may be more to read. It runs
// on the event loop for the first read and on a wake's goroutine after.
func (op *fetchOp) run() {
	for {
		bytes, urgent := op.read()
		if op.final || urgent || !op.canWait || bytes >= int64(op.minBytes) ||
			len(op.items) == 0 || !time.Now().Before(op.deadline) {
			op.answer()
			return
		}
		// Do not hold segments while parked: read again when woken.
		for i := range op.items {
			op.items[i].records.Release()
			op.items[i].records = segstore.Slice{}
		}
		if op.park() {
			return
		}
		op.final = true // shutting down
	}
}

// read fills every item's result. It reports the record bytes found and
// whether something must be answered now (an error or a diverging epoch).
func (op *fetchOp) read() (bytes int64, urgent bool) {
	limit, minOne := op.maxBytes, true
	var rt topicLookup
	if op.follower && op.n.cluster != nil {
		op.throttle, op.throttleUntil = op.n.replThrottle().current(), time.Time{}
	}
	for i := range op.items {
		it := &op.items[i]
		it.fetchResult = fetchResult{}
		it.leaderThrottled = false
		it.p = op.resolve(it, &rt)
		op.readPartition(it, &limit, &minOne)
		if it.err != 0 {
			urgent = true
			if !op.follower || it.err != kerr.OffsetOutOfRange.Code {
				it.hw, it.lso, it.logStart = -1, -1, -1
			} // a follower below our log start restarts at the one it is sent
		} else {
			urgent = urgent || it.diverging
			it.abortedEmpty = op.readComm
		}
		bytes += it.records.Len
	}
	return bytes, urgent
}

// topicLookup caches the last topic resolved: items of a topic are adjacent.
type topicLookup struct {
	ok    bool
	name  string
	id    [16]byte
	t     *topic
	parts []*partition
}

func (op *fetchOp) resolve(it *fetchItem, rt *topicLookup) *partition {
	reg := op.n.reg
	if op.version >= 13 {
		if !rt.ok || rt.id != it.topicID {
			rt.ok, rt.id, rt.t = true, it.topicID, reg.getByID(it.topicID)
			rt.parts = nil
			if rt.t != nil {
				rt.parts = reg.partitions(rt.t)
			}
		}
		if rt.t == nil {
			it.err = kerr.UnknownTopicID.Code
			return nil
		}
	} else {
		if !rt.ok || rt.name != it.topic {
			rt.ok, rt.name, rt.t = true, it.topic, reg.get(it.topic)
			rt.parts = nil
			if rt.t != nil {
				rt.parts = reg.partitions(rt.t)
			}
		}
	}
	if rt.t == nil || it.partition < 0 || int(it.partition) >= len(rt.parts) {
		it.err = kerr.UnknownTopicOrPartition.Code
		return nil
	}
	return rt.parts[it.partition]
}

// readPartition reads one partition as Kafka's ReplicaManager.readFromLog
// does: limit is what is left of the request's MaxBytes; minOne is true
// until a partition returned records (KIP-74).
func (op *fetchOp) readPartition(it *fetchItem, limit *int64, minOne *bool) {
	p := it.p
	if p == nil {
		return // it.err set by resolve
	}
	l := p.getLog()
	if l == nil {
		it.err = kerr.LeaderNotAvailable.Code
		if op.n.cluster != nil {
			op.notLeader(it)
		}
		return
	}
	// A negative CurrentLeaderEpoch is absent (Kafka's FetchRequest.optionalEpoch).
	if it.curEpoch >= 0 {
		if code := checkLeaderEpoch(p, it.curEpoch); code != 0 {
			it.err = code
			if code == kerr.FencedLeaderEpoch.Code && op.version >= 16 {
				st := p.state()
				it.hasLeader, it.leaderID, it.leaderEpoch = true, st.Leader, st.LeaderEpoch
			}
			return
		}
	}
	if op.follower {
		op.readForFollower(it, l, limit, minOne)
		return
	}
	hw := p.hw.Load()
	if op.n.cluster != nil && p.ldr.Load() == nil {
		// Kafka serves consumers from followers (KIP-392) to clients that
		// send their metadata (v11+), up to the follower's high watermark.
		if p.fol.Load() == nil || op.version < 11 {
			op.notLeader(it)
			return
		}
	}
	offs := l.Offsets()
	it.hw, it.lso, it.logStart = hw, hw, offs.Start
	if it.lastFetchedEpoch >= 0 {
		// Kafka's Partition.readRecords: the epoch's end as the leader's
		// epoch cache has it (OffsetForLeaderEpoch's answer); an epoch it
		// cannot place (newer than the current one) is OFFSET_OUT_OF_RANGE.
		entries, leo := epochHistory(p, l)
		e, end := endOffsetForEpoch(entries, it.lastFetchedEpoch, leo)
		if e < 0 || end < 0 || it.offset < offs.Start {
			it.err = kerr.OffsetOutOfRange.Code
			return
		}
		if e < it.lastFetchedEpoch || end < it.offset {
			it.diverging, it.divEpoch, it.divEnd = true, e, end
			return
		}
	}
	if it.offset > hw && it.offset <= offs.End {
		return // written but not yet committed: nothing to read, as in Kafka
	}
	op.readRange(it, l, hw, limit, minOne)
}

// notLeader answers NOT_LEADER_OR_FOLLOWER (or LEADER_NOT_AVAILABLE) with,
// for v16+, the current leader as a KIP-951 hint.
func (op *fetchOp) notLeader(it *fetchItem) {
	it.err = errCode(op.n.notLeaderErr(it.p))
	if st := it.p.state(); op.version >= 16 && it.err == kerr.NotLeaderForPartition.Code && st.Leader >= 0 {
		it.hasLeader, it.leaderID, it.leaderEpoch = true, st.Leader, st.LeaderEpoch
	}
}

// readRange reads it's records from it.offset below bound (the HW for
// consumers, the LEO for followers), within the request's limits.
func (op *fetchOp) readRange(it *fetchItem, l *segstore.Log, bound int64, limit *int64, minOne *bool) {
	p := it.p
	want := min(int64(max(it.maxBytes, 0)), *limit)
	if !*minOne && want <= 0 {
		return
	}
	sl, err := l.Read(it.offset, want, bound)
	if err != nil {
		it.err = errCode(err)
		if !errors.Is(err, segstore.ErrOffsetOutOfRange) && !errors.Is(err, segstore.ErrClosed) {
			op.n.log.Error("fetch read failed", "topic", p.topic.name, "partition", p.index, "err", err)
		}
		return
	}
	if sl.Len > want && !*minOne {
		sl.Release() // the first batch does not fit and KIP-74 no longer applies
		return
	}
	if sl.Len > 0 {
		*minOne = false
		*limit = max(*limit-sl.Len, 0)
	}
	it.records = sl
}

// readForFollower serves a replica's fetch: the leader records the
// follower's position (moving the HW and the ISR) and decides whether its
// log diverged; if not, it reads up to the log end. Standalone brokers have
// no followers: they refuse the way Kafka refuses a replica id outside a
// partition's replica set.
func (op *fetchOp) readForFollower(it *fetchItem, l *segstore.Log, limit *int64, minOne *bool) {
	p := it.p
	var ldr *repl.Leader
	if op.n.cluster != nil {
		ldr = p.ldr.Load()
	}
	if ldr == nil {
		if it.curEpoch >= 0 {
			it.err = kerr.UnknownLeaderEpoch.Code
		} else {
			it.err = kerr.NotLeaderForPartition.Code
		}
		return
	}
	dec := ldr.HandleFetch(repl.FetchRequest{ReplicaID: op.replicaID, CurrentLeaderEpoch: it.curEpoch,
		FetchOffset: it.offset, LastFetchedEpoch: it.lastFetchedEpoch})
	op.n.cluster.syncHW(p)
	if dec.Err != nil {
		it.err = errCode(dec.Err)
		it.hw, it.lso, it.logStart = dec.HighWatermark, dec.HighWatermark, dec.LogStartOffset
		return
	}
	it.hw, it.lso, it.logStart = dec.HighWatermark, dec.HighWatermark, dec.LogStartOffset
	if dec.Diverging != nil {
		it.diverging, it.divEpoch, it.divEnd = true, dec.Diverging.Epoch, dec.Diverging.EndOffset
		return
	}
	it.leo = l.Offsets().End
	if tv := op.throttle; tv != nil && tv.leaderThrottled(p.topic.name, p.index, op.replicaID) {
		if at := tv.r.leader.readyAt(); !at.IsZero() {
			// Over the leader replication quota: nothing for this
			// partition this time (as Kafka's leader answers).
			if op.throttleUntil.IsZero() || at.Before(op.throttleUntil) {
				op.throttleUntil = at
			}
			return
		}
		it.leaderThrottled = true
	}
	op.readRange(it, l, it.leo, limit, minOne)
}

// answer frames the items (whose reads are done) and responds.
func (op *fetchOp) answer() {
	h := frameHead{version: op.version, err: op.topErr}
	switch op.sessMode {
	case sessNew:
		h.sessionID = op.n.fetch.createSession(op.version >= 13, op.items)
	case sessIncr:
		h.sessionID = op.sess.id
		if !op.sess.filter(op.sessEpoch, op.items) {
			h.err = kerr.InvalidFetchSessionEpoch.Code
			for i := range op.items {
				op.items[i].omit = true
			}
		}
	}
	var brokers []frameBroker
	if op.version >= 16 {
		// NodeEndpoints: where each current leader named in the answer is.
		seen := map[int32]bool{}
		for i := range op.items {
			it := &op.items[i]
			if !it.hasLeader || it.omit || seen[it.leaderID] {
				continue
			}
			seen[it.leaderID] = true
			for _, b := range op.n.brokers() {
				if b.id == it.leaderID {
					brokers = append(brokers, frameBroker{id: b.id, host: b.host, port: b.port, rack: b.rack})
				}
			}
		}
	}
	if op.throttle != nil {
		var sent int64
		for i := range op.items {
			if it := &op.items[i]; it.leaderThrottled && !it.omit {
				sent += it.records.Len
			}
		}
		op.throttle.r.leader.record(sent)
	}
	f := getFetchFrame()
	f.build(h, op.items, brokers)
	op.putItems()
	op.c.respondParts(f.size, f.parts...)
}

// drop ends a fetch whose connection closed while it was parked: nobody
// reads an answer, so it neither reads again (pinning segments and framing
// for nothing) nor opens a fetch session (which would take a cache slot,
// perhaps evicting a live session). The items hold no segment: parking
// released them.
func (op *fetchOp) drop() {
	for i := range op.items {
		op.items[i].records.Release()
	}
	op.putItems()
	op.c.noResponse()
}

// putItems returns the items' backing array to the pool.
func (op *fetchOp) putItems() {
	clear(op.items)
	if cap(op.items) <= 1<<12 {
		*op.itemsBuf = op.items[:0]
		fetchItemPool.Put(op.itemsBuf)
	}
	op.items, op.itemsBuf = nil, nil
}
