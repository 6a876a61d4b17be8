package node

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicemq/sluice/ctrl"
	"github.com/sluicemq/sluice/repl"
)

// Replica fetchers: the follower side of replication's network. Each
// partition this broker follows is fetched by the fetcher of its leader's
// broker, one goroutine per source broker batching all its partitions into
// one Fetch (v12, LastFetchedEpoch/DivergingEpoch) per round, as Kafka's
// ReplicaFetcherThread does (with num.replica.fetchers=1). The decisions
// (what to ask, how to truncate, where the HW is) are repl.Follower's; the
// loop (replfetch_loop.go) does the I/O around it.
//
// Locks: replicaFetchers.mu guards the maps and each fetcher's address and
// partitions; it is never held with a followState.mu. followState.mu is held
// while the fetcher calls into its Follower, so segstore's locks and
// partition.watchMu (setHW wakes watchers) come after it. No lock is held
// across the network: a fetch parked at the leader holds nothing that
// follow, unfollow or close need (follow cuts it off when it adds a
// partition: replfetch_interrupt.go).

// fetcherConfig is what the replica fetchers need of the broker.
type fetcherConfig struct {
	nodeID   int32 // sent as the fetch's ReplicaID
	wait     time.Duration
	maxBytes int32 // per partition
	respMax  int32 // per response
	backoff  time.Duration
	log      *slog.Logger
	metrics  *metrics.Set
	throttle *replThrottle // replication throttle (replthrottle.go); nil: none
}

// replicaFetchers owns the fetcher goroutines, one per source broker.
//
// Concurrency: follow, unfollow and close are safe for concurrent use.
type replicaFetchers struct {
	cfg                fetcherConfig
	requests, failures *metrics.Counter

	mu       sync.Mutex
	closed   bool
	fetchers map[int32]*fetcher // by leader broker id
	parts    map[*partition]*followState
	wg       sync.WaitGroup // fetcher goroutines
}

// followState is one partition followed with one Follower. Each follow makes
// a new one, so an answer to a request sent for an older one is recognised
// (gone) and dropped.
type followState struct {
	p  *partition
	f  *repl.Follower
	fe *fetcher // guarded by replicaFetchers.mu

	// mu is held while the fetcher uses f (Next, HandleFetch, setHW); gone
	// is set under it when p stops being followed with f, so once that is
	// done nothing touches p's log or HW for f any more.
	mu   sync.Mutex
	gone bool

	// lag is the leader's HW minus our LEO after the last answer (MaxLag).
	lag atomic.Int64

	followed time.Time // when follow made st

	// The fetcher goroutine's own (no lock).
	sentOnce     bool // a fetch for st went out
	backoffUntil time.Time
	fails        int  // answers in a row that were a waitForMetadata error
	oorLogged    bool // OFFSET_OUT_OF_RANGE is logged once
}

// retire marks st gone, waiting for an in-flight HandleFetch on it (a disk
// write, never the network) to finish.
func (st *followState) retire() {
	st.mu.Lock()
	st.gone = true
	st.mu.Unlock()
}

// newReplicaFetchers is the broker's entry point: its node id, its cluster
// config's replica.fetch.* settings, logger and metrics.
func newReplicaFetchers(n *Node) *replicaFetchers {
	cc := n.cfg.Cluster
	if cc == nil {
		cc = DefaultClusterConfig(nil)
	}
	return newReplicaFetchersWith(fetcherConfig{
		nodeID: n.cfg.NodeID, wait: cc.ReplicaFetchWait, maxBytes: cc.ReplicaFetchMaxB,
		respMax: cc.ReplicaFetchRespMax, backoff: cc.ReplicaFetchBackoff,
		log: n.log, metrics: n.cfg.Metrics,
		throttle: newReplThrottle(n.cfg.NodeID, func() *ctrl.State {
			if n.cluster == nil {
				return nil // newCluster has not returned yet
			}
			s, _ := n.cluster.currentView()
			return s
		}, n.cfg.Now),
	})
}

// newReplicaFetchersWith builds the fetchers from cfg (zero fields get the
// defaults). It registers sluice_replica_fetch_requests_total,
// sluice_replica_fetch_errors_total and sluice_replica_max_lag in
// cfg.metrics; the newest replicaFetchers on a Set owns the gauge.
func newReplicaFetchersWith(cfg fetcherConfig) *replicaFetchers {
	def := DefaultClusterConfig(nil)
	if cfg.wait <= 0 {
		cfg.wait = def.ReplicaFetchWait
	}
	if cfg.maxBytes <= 0 {
		cfg.maxBytes = def.ReplicaFetchMaxB
	}
	if cfg.respMax <= 0 {
		cfg.respMax = def.ReplicaFetchRespMax
	}
	if cfg.backoff <= 0 {
		cfg.backoff = def.ReplicaFetchBackoff
	}
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	if cfg.metrics == nil {
		cfg.metrics = metrics.NewSet()
	}
	r := &replicaFetchers{cfg: cfg, fetchers: map[int32]*fetcher{}, parts: map[*partition]*followState{},
		requests: cfg.metrics.GetOrCreateCounter("sluice_replica_fetch_requests_total"),
		failures: cfg.metrics.GetOrCreateCounter("sluice_replica_fetch_errors_total"),
	}
	const lagName = "sluice_replica_max_lag"
	cfg.metrics.UnregisterMetric(lagName)
	cfg.metrics.NewGauge(lagName, func() float64 { return float64(r.maxLag()) })
	return r
}

// maxLag is Kafka's ReplicaFetcherManager MaxLag: the largest (leader HW -
// own LEO) over the partitions followed. Safe for concurrent use.
func (r *replicaFetchers) maxLag() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m int64
	for _, st := range r.parts {
		m = max(m, st.lag.Load())
	}
	return m
}

// follow makes p fetched from broker leader (at addr host:port, its Kafka
// listener) by f, replacing whatever p was following before (another
// leader: p moves to that broker's fetcher). A fetch of that fetcher in
// flight (often parked at the leader for up to replica.fetch.wait.max.ms)
// is interrupted, so the new partition goes out in the next request at
// once: after a failover the new leader's acks=all writes wait for exactly
// this follower's first fetch. It never blocks on the network, but waits for
// an append of p's previous Follower that is being written (so call it
// holding no lock the append path takes). Safe for concurrent use.
func (r *replicaFetchers) follow(p *partition, f *repl.Follower, leader int32, addr string) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.cfg.log.Warn("replica fetchers are closed, not following", "topic", p.topic.name, "partition", p.index, "leader", leader)
		return
	}
	fe := r.fetchers[leader]
	if fe == nil {
		fe = r.startFetcherLocked(leader, addr)
	} else if fe.addr != addr {
		r.cfg.log.Info("replica fetcher: leader's address changed", "leader", leader, "from", fe.addr, "to", addr)
		fe.addr = addr // the loop re-dials when it sees the change
	}
	old := r.parts[p]
	if old != nil {
		r.dropLocked(old, fe)
	}
	st := &followState{p: p, f: f, fe: fe, followed: time.Now()}
	r.parts[p] = st
	fe.parts[p] = st
	fe.addedLocked()
	r.mu.Unlock()
	if old != nil {
		old.retire()
	}
}

// unfollow stops fetching p if f is still the Follower it follows (compared
// by pointer), and waits until no HandleFetch for p is running, so the
// caller may then truncate the log or hand it to a Leader. A fetch in
// flight for p is not waited for: its answer is dropped. Safe for
// concurrent use.
func (r *replicaFetchers) unfollow(p *partition, f *repl.Follower) {
	r.mu.Lock()
	st := r.parts[p]
	if st == nil || st.f != f {
		r.mu.Unlock()
		return
	}
	r.dropLocked(st, nil)
	r.mu.Unlock()
	st.retire()
}

// dropLocked removes st from its fetcher and stops that fetcher if it has
// nothing left to fetch, unless it is keep (about to get a partition).
func (r *replicaFetchers) dropLocked(st *followState, keep *fetcher) {
	delete(r.parts, st.p)
	fe := st.fe
	delete(fe.parts, st.p)
	if len(fe.parts) == 0 && fe != keep {
		delete(r.fetchers, fe.leader)
		fe.cancel()
	}
}

// close stops every fetcher and waits for them (an append in progress
// finishes first). Later follows are ignored. Safe for concurrent use.
func (r *replicaFetchers) close() {
	r.mu.Lock()
	r.closed = true
	for _, fe := range r.fetchers {
		fe.cancel()
	}
	r.fetchers = map[int32]*fetcher{}
	states := r.parts
	r.parts = map[*partition]*followState{}
	r.mu.Unlock()
	r.wg.Wait()
	for _, st := range states {
		st.retire()
	}
}

// startFetcherLocked starts the goroutine fetching from broker leader.
func (r *replicaFetchers) startFetcherLocked(leader int32, addr string) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	fe := &fetcher{r: r, leader: leader, addr: addr, parts: map[*partition]*followState{},
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	r.fetchers[leader] = fe
	r.wg.Add(1)
	go fe.run()
	return fe
}

// warnEvery rate-limits identical replica fetch log lines.
const warnEvery = 30 * time.Second
