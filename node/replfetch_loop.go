package node

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/repl"
)

const (
	// replicaFetchVersion is the Fetch version followers send: the newest
	// naming topics by name (no topic ids to resolve) that carries
	// LastFetchedEpoch and answers DivergingEpoch (KIP-595), flexible.
	replicaFetchVersion = 12
	// replicaSocketTimeout is Kafka's replica.socket.timeout.ms: how long a
	// fetch may take beyond its MaxWait before the connection is given up.
	replicaSocketTimeout = 30 * time.Second
	// replicaDialTimeout is Kafka's socket.connection.setup.timeout.ms.
	replicaDialTimeout = 10 * time.Second
)

// fetcher fetches every partition this broker follows from one leader
// broker, on its own goroutine (run).
type fetcher struct {
	r      *replicaFetchers
	leader int32
	addr   string                      // guarded by r.mu
	parts  map[*partition]*followState // guarded by r.mu
	// added counts the partitions added to parts; inflight interrupts the
	// request in flight (both guarded by r.mu; see addedLocked).
	added    uint64
	inflight context.CancelCauseFunc
	wake     chan struct{}   // poked when partitions are added
	ctx      context.Context // cancelled to stop the goroutine
	cancel   context.CancelFunc

	// The goroutine's own.
	log        *slog.Logger
	conn       *kconn
	connAddr   string
	retryAt    time.Time // connection backoff
	failing    bool      // the last request failed as a whole
	rounds     int
	interrupts int                  // requests cut off by addedLocked
	warned     map[string]time.Time // rate limit of identical log lines
	throttle   *throttleView        // the throttle settings of the last collect (nil: none)
}

// poke makes a sleeping fetcher look at its partitions again. Never blocks.
func (fe *fetcher) poke() {
	select {
	case fe.wake <- struct{}{}:
	default:
	}
}

// sent is one partition of a fetch in flight, and the Follower request it
// was built from.
type sent struct {
	st        *followState
	req       repl.Request
	throttled bool // the bytes received count against the follower quota
}

type topicPart struct {
	topic     string
	partition int32
}

func (fe *fetcher) run() {
	defer fe.r.wg.Done()
	fe.log = fe.r.cfg.log.With("leader", fe.leader)
	fe.warned = map[string]time.Time{}
	fe.log.Info("replica fetcher started")
	defer func() {
		if fe.conn != nil {
			fe.conn.Close()
		}
		fe.log.Info("replica fetcher stopped")
	}()
	for fe.ctx.Err() == nil {
		now := time.Now()
		sts, addr, gen, next := fe.collect(now)
		if now.Before(fe.retryAt) {
			next = fe.retryAt
		} else if len(sts) > 0 {
			fe.round(sts, addr, gen, next)
			continue
		}
		fe.sleep(next)
	}
}

// collect returns the partitions due for fetching (not backing off, not
// held back by the follower replication quota), in a rotating order so that
// no partition is always last in the response (a leader sends an oversized
// batch only for the first partition, KIP-74), the leader's address, the
// count of partitions added so far (fe.added) and when the next backoff or
// quota wait ends (zero: none).
func (fe *fetcher) collect(now time.Time) ([]*followState, string, uint64, time.Time) {
	fe.throttle = fe.r.cfg.throttle.current()
	var quotaAt time.Time // when the follower quota frees; zero: it is free
	if fe.throttle != nil {
		quotaAt = fe.r.cfg.throttle.follower.readyAt()
	}
	fe.r.mu.Lock()
	addr, gen := fe.addr, fe.added
	sts := make([]*followState, 0, len(fe.parts))
	var next time.Time
	later := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for _, st := range fe.parts {
		if now.Before(st.backoffUntil) {
			later(st.backoffUntil)
			continue
		}
		if !quotaAt.IsZero() && fe.throttle.followerThrottled(st.p.topic.name, st.p.index) {
			later(quotaAt)
			continue
		}
		sts = append(sts, st)
	}
	fe.r.mu.Unlock()
	slices.SortFunc(sts, func(a, b *followState) int {
		return cmp.Or(cmp.Compare(a.p.topic.name, b.p.topic.name), cmp.Compare(a.p.index, b.p.index))
	})
	if len(sts) > 1 {
		fe.rounds++
		k := fe.rounds % len(sts)
		sts = append(sts[k:], sts[:k]...)
	}
	return sts, addr, gen, next
}

// sleep waits until the time given (zero: no deadline), a poke or stop.
func (fe *fetcher) sleep(until time.Time) {
	var tc <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-fe.ctx.Done():
	case <-fe.wake:
	case <-tc:
	}
}

// round sends one Fetch for sts (collected when fe.added was gen) and
// applies the answers. The fetch parks at the leader no later than
// backoffEnd (zero: no partition is backing off), so a partition whose
// backoff ends is in the next fetch then, not a whole
// replica.fetch.wait.max.ms later.
func (fe *fetcher) round(sts []*followState, addr string, gen uint64, backoffEnd time.Time) {
	now := time.Now()
	batch := make([]sent, 0, len(sts))
	for _, st := range sts {
		st.mu.Lock()
		if st.gone {
			st.mu.Unlock()
			continue
		}
		req := st.f.Next()
		st.mu.Unlock()
		if req.EpochQuery {
			// Followers are built with UseEpochQuery=false: this broker's
			// fetcher only speaks Fetch v12.
			fe.logOnce(slog.LevelError, "BUG: replica fetcher got a Follower in OffsetForLeaderEpoch mode",
				st, errors.New("epoch queries are not sent"))
			st.backoffUntil = now.Add(fe.r.cfg.backoff)
			continue
		}
		throttled := fe.throttle != nil && fe.throttle.followerThrottled(st.p.topic.name, st.p.index)
		batch = append(batch, sent{st: st, req: req, throttled: throttled})
		if !st.sentOnce {
			st.sentOnce = true
			fe.log.Debug("replica fetch: first request for a followed partition", "topic", st.p.topic.name,
				"partition", st.p.index, "since_follow", time.Since(st.followed), "fetch_offset", req.FetchOffset,
				"epoch", req.LeaderEpoch)
		}
	}
	if len(batch) == 0 {
		return
	}
	conn, err := fe.connect(addr)
	if err != nil {
		if fe.ctx.Err() == nil {
			fe.requestFailed(err)
		}
		return
	}
	tctx, cancel := context.WithTimeout(fe.ctx, fe.r.cfg.wait+replicaSocketTimeout)
	defer cancel()
	ctx, interrupt := context.WithCancelCause(tctx)
	defer interrupt(nil)
	if !fe.sending(gen, interrupt) {
		return // a partition came in since collect: take it along
	}
	fe.r.requests.Inc()
	wait := fe.r.cfg.wait
	if !backoffEnd.IsZero() {
		wait = max(0, min(wait, time.Until(backoffEnd).Round(time.Millisecond)+time.Millisecond))
	}
	resp, err := conn.Request(ctx, fe.request(batch, wait))
	fe.answered()
	if err != nil {
		fe.conn = nil // Request closed it
		switch {
		case fe.ctx.Err() != nil:
		case errors.Is(context.Cause(ctx), errPartitionsAdded):
			// Nothing of the batch was applied: the next round asks the
			// same offsets again, with the new partition.
			fe.interrupts++
			fe.log.Debug("replica fetch interrupted: partitions added", "addr", addr, "interrupts", fe.interrupts)
		default:
			fe.requestFailed(err)
		}
		return
	}
	fr := resp.(*kmsg.FetchResponse)
	if fr.ErrorCode != 0 {
		fe.requestFailed(fmt.Errorf("fetch from broker %s: %w", addr, kerr.ErrorForCode(fr.ErrorCode)))
		return
	}
	if fe.failing {
		fe.failing = false
		fe.log.Info("replica fetcher is fetching again", "addr", addr)
	}
	if n := throttledBytes(batch, fr); n > 0 {
		fe.r.cfg.throttle.follower.record(n)
	}
	fe.answer(batch, fr)
}

// request builds one Fetch v12 for the batch, parking at most wait: no
// fetch session, topics by name, each partition with its fetch offset and
// last fetched epoch.
func (fe *fetcher) request(batch []sent, wait time.Duration) *kmsg.FetchRequest {
	cfg := &fe.r.cfg
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(replicaFetchVersion)
	req.ReplicaID = cfg.nodeID
	req.MaxWaitMillis = int32(wait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = cfg.respMax
	req.IsolationLevel = 0
	req.SessionID, req.SessionEpoch = 0, -1
	byTopic := map[string]int{}
	for _, s := range batch {
		name := s.st.p.topic.name
		i, ok := byTopic[name]
		if !ok {
			i = len(req.Topics)
			byTopic[name] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = name
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = s.st.p.index
		rp.CurrentLeaderEpoch = s.req.LeaderEpoch
		rp.FetchOffset = s.req.FetchOffset
		rp.LastFetchedEpoch = s.req.LastFetchedEpoch
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = cfg.maxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	return req
}

// throttledBytes is the record bytes fr carries for the batch's throttled
// partitions.
func throttledBytes(batch []sent, fr *kmsg.FetchResponse) int64 {
	var throttled map[topicPart]bool
	for _, s := range batch {
		if s.throttled {
			if throttled == nil {
				throttled = map[topicPart]bool{}
			}
			throttled[topicPart{s.st.p.topic.name, s.st.p.index}] = true
		}
	}
	if throttled == nil {
		return 0
	}
	var n int64
	for i := range fr.Topics {
		rt := &fr.Topics[i]
		for j := range rt.Partitions {
			if rp := &rt.Partitions[j]; throttled[topicPart{rt.Topic, rp.Partition}] {
				n += int64(len(rp.RecordBatches))
			}
		}
	}
	return n
}

// connect returns the connection to addr, dialling it if needed.
func (fe *fetcher) connect(addr string) (*kconn, error) {
	if fe.conn != nil && fe.connAddr == addr {
		return fe.conn, nil
	}
	if fe.conn != nil {
		fe.conn.Close()
		fe.conn = nil
	}
	ctx, cancel := context.WithTimeout(fe.ctx, replicaDialTimeout)
	defer cancel()
	c, err := dialKafka(ctx, addr, fmt.Sprintf("broker-%d-fetcher-%d", fe.r.cfg.nodeID, fe.leader))
	if err != nil {
		return nil, err
	}
	// A round is done with a response before it sends the next request
	// (Follower.HandleFetch returns once the append is written), so the
	// connection may reuse its receive buffer.
	c.reuseResponses = true
	fe.conn, fe.connAddr = c, addr
	fe.log.Info("replica fetcher connected", "addr", addr)
	return c, nil
}

// requestFailed backs the whole fetcher off after a connection or
// request-level error; the next round dials again.
func (fe *fetcher) requestFailed(err error) {
	if fe.conn != nil {
		fe.conn.Close()
		fe.conn = nil
	}
	fe.r.failures.Inc()
	fe.failing = true
	fe.retryAt = time.Now().Add(fe.r.cfg.backoff)
	fe.logOnce(slog.LevelWarn, "replica fetch failed, retrying after backoff", nil, err)
}

// logOnce logs msg at level, an identical line at most once per warnEvery
// per fetcher; st names the partition, if any.
func (fe *fetcher) logOnce(level slog.Level, msg string, st *followState, err error) {
	key := msg + "\x00" + err.Error()
	if st != nil {
		key += fmt.Sprintf("\x00%s-%d", st.p.topic.name, st.p.index)
	}
	now := time.Now()
	if at, ok := fe.warned[key]; ok && now.Sub(at) < warnEvery {
		return
	}
	if len(fe.warned) > 1000 {
		clear(fe.warned) // bound the memory of distinct errors
	}
	fe.warned[key] = now
	args := []any{"err", err, "backoff", fe.r.cfg.backoff}
	if st != nil {
		args = append(args, "topic", st.p.topic.name, "partition", st.p.index)
	}
	fe.log.Log(context.Background(), level, msg, args...)
}

// wholeBatches cuts a trailing partial batch off records: a Kafka leader may
// end a fetch response mid-batch, and the next fetch gets that batch whole.
// Corruption in a batch that is complete is left for AppendReplica to find.
func wholeBatches(b []byte) []byte {
	pos := 0
	for rest := b; len(rest) > 0; {
		if len(rest) < 12 {
			break
		}
		size := 12 + int64(int32(binary.BigEndian.Uint32(rest[8:12])))
		if size > int64(len(rest)) {
			break
		}
		if size < 12 {
			return b // corrupt: AppendReplica reports it
		}
		pos += int(size)
		rest = rest[size:]
	}
	return b[:pos]
}
