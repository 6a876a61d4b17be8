package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/ctrl"
)

// cluster is a Node's membership of a replicated cluster (Config.Cluster):
// the controller it runs (voters), its registration and heartbeats as a
// broker, and the metadata it follows, turned into the roles of its local
// replicas (cluster_meta.go, cluster_part.go).
//
// Concurrency: start and stop are called once each from Node.Start and
// Node.Close; every other method is safe for concurrent use. Reconciles are
// serialized by the registry's adminMu.
type cluster struct {
	n      *Node
	cfg    *ClusterConfig
	raft   *ctrl.Node   // this node's controller; nil on broker-only nodes
	net    *ctrl.Net    // the controller listener; nil on broker-only nodes
	client *ctrl.Client // the broker's channel to the active controller
	fetch  *replicaFetchers

	incarnation string
	epoch       atomic.Int64 // broker epoch; 0 until registered
	fenced      atomic.Bool
	applied     chan struct{} // OnApply's wake-up (cap 1)
	swept       bool          // stray logs deleted (sweepStrays); under adminMu
	caughtUp    atomic.Bool   // the metadata has reached this broker's registration
	gate        *gate         // client requests wait for caughtUp

	viewMu sync.Mutex
	view   *ctrl.State   // last metadata reconciled (a private clone)
	viewCh chan struct{} // closed when a newer view is in place

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// clusterMetadataDir is where a voter keeps its raft log and snapshots, as
// KRaft names it.
const clusterMetadataDir = "__cluster_metadata-0"

func newCluster(n *Node) (*cluster, error) {
	cfg := n.cfg.Cluster
	var b [12]byte
	_, _ = rand.Read(b[:])
	c := &cluster{n: n, cfg: cfg, incarnation: base64.RawURLEncoding.EncodeToString(b[:]),
		applied: make(chan struct{}, 1), viewCh: make(chan struct{}), view: ctrl.NewState()}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.gate = newGate(n.serveAdmitted)
	voters := map[uint64]string{}
	for id, addr := range cfg.Voters {
		voters[ctrl.RaftID(id)] = addr
	}
	if cfg.Controller {
		peers := map[uint64]string{}
		var ids []uint64
		for id, addr := range voters {
			ids = append(ids, id)
			if id != ctrl.RaftID(n.cfg.NodeID) {
				peers[id] = addr
			}
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		var err error
		c.net, err = ctrl.ListenNet(ctrl.NetConfig{Listen: cfg.ControllerListen, Peers: peers, Logger: n.log})
		if err != nil {
			return nil, fmt.Errorf("node: controller listener %s: %w", cfg.ControllerListen, err)
		}
		c.raft, _, err = ctrl.NewNode(ctrl.Config{
			ID: ctrl.RaftID(n.cfg.NodeID), Peers: ids, Dir: filepath.Join(n.cfg.DataDir, clusterMetadataDir),
			Transport: c.net.Transport(), SessionTimeout: cfg.SessionTimeout, SessionGrace: cfg.SessionGrace,
			UncleanLeaderElection: cfg.UncleanLeaderElection,
			VoterSessionGrace:     cfg.VoterSessionGrace, OnApply: func(uint64) { c.signalApplied() },
		})
		if err != nil {
			c.net.Close()
			return nil, fmt.Errorf("node: controller: %w", err)
		}
		c.net.Attach(c.raft)
	}
	if cfg.Broker {
		c.client = ctrl.NewClient(ctrl.ClientConfig{Voters: voters, Local: c.raft, Logger: n.log})
		c.fetch = newReplicaFetchers(n)
		n.pids.remote = func(count int64) (int64, error) {
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			defer cancel()
			return c.client.AllocateProducerIDs(ctx, n.cfg.NodeID, count)
		}
		n.pids.allocated = func() int64 { s, _ := c.currentView(); return s.NextProducerID }
	}
	return c, nil
}

// clusterIDFor derives the cluster id every node of a cluster computes alike
// from controller.quorum.voters, for clusters whose operator set no
// cluster.id (Kafka makes operators format storage with one).
func clusterIDFor(voters map[int32]string) string {
	ids := make([]int, 0, len(voters))
	for id := range voters {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(strconv.Itoa(id) + "@" + voters[int32(id)] + ",")
	}
	h1, h2 := fnv.New64a(), fnv.New64()
	h1.Write([]byte(sb.String()))
	h2.Write([]byte(sb.String()))
	var b [16]byte
	copy(b[:8], h1.Sum(nil))
	copy(b[8:], h2.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (c *cluster) signalApplied() {
	select {
	case c.applied <- struct{}{}:
	default:
	}
}

// start runs the controller, the metadata follower and, for brokers, the
// registration/heartbeat loop and the leaders' ticks. The Kafka listener
// must be bound (registration advertises it).
func (c *cluster) start() {
	if c.raft != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := c.raft.Run(c.ctx, c.cfg.RaftTick); err != nil && c.ctx.Err() == nil {
				c.n.log.Error("controller stopped", "err", err)
			}
		}()
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.followMetadata() }()
	if c.raft != nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.adjustLeaders() }()
	}
	if c.cfg.Broker {
		c.wg.Add(2)
		go func() { defer c.wg.Done(); c.heartbeatLoop() }()
		go func() { defer c.wg.Done(); c.tickLeaders() }()
	}
}

// followMetadata reconciles every new committed state: from the local
// controller on voters, by long-polling a controller on broker-only nodes.
func (c *cluster) followMetadata() {
	for c.ctx.Err() == nil {
		var s *ctrl.State
		if c.raft != nil {
			select {
			case <-c.ctx.Done():
				return
			case <-c.applied:
			}
			c.raft.Read(func(st *ctrl.State) { s = st.Clone() })
		} else {
			var err error
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			s, err = c.client.FetchMetadata(ctx, c.appliedIndex(), 5*time.Second)
			cancel()
			if err != nil {
				if c.ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
					c.n.log.Warn("fetching metadata from the controllers failed", "err", err)
					c.sleep(c.cfg.HeartbeatInterval)
				}
				continue
			}
		}
		if s.AppliedIndex <= c.appliedIndex() && s.AppliedIndex != 0 {
			continue
		}
		if c.cfg.Broker {
			c.reconcile(s)
		}
		if e := c.epoch.Load(); e != 0 && s.AppliedIndex >= uint64(e) && !c.caughtUp.Swap(true) {
			c.n.log.Info("metadata caught up; serving clients", "index", s.AppliedIndex, "epoch", e)
		}
		if c.caughtUp.Load() {
			c.gate.release()
		}
		c.viewMu.Lock()
		c.view = s
		close(c.viewCh)
		c.viewCh = make(chan struct{})
		c.viewMu.Unlock()
	}
}

// appliedIndex is the metadata log index the broker has reconciled.
func (c *cluster) appliedIndex() uint64 {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	return c.view.AppliedIndex
}

// currentView returns the last reconciled state (do not modify) and a
// channel closed when a newer one replaces it.
func (c *cluster) currentView() (*ctrl.State, <-chan struct{}) {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	return c.view, c.viewCh
}

// waitView waits until ok holds on the reconciled metadata or ctx ends.
func (c *cluster) waitView(ctx context.Context, ok func(*ctrl.State) bool) error {
	for {
		s, ch := c.currentView()
		if ok(s) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for the metadata to show the change", kerr.RequestTimedOut)
		case <-ch:
		}
	}
}

// heartbeatLoop registers the broker and keeps its session alive; a stale
// epoch (fenced by a newer registration of the same id) re-registers.
func (c *cluster) heartbeatLoop() {
	for c.ctx.Err() == nil {
		if c.epoch.Load() == 0 {
			if err := c.register(); err != nil {
				if c.ctx.Err() == nil {
					c.n.log.Warn("broker registration failed; retrying", "err", err)
				}
				c.sleep(c.cfg.HeartbeatInterval)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.heartbeatTimeout())
		r, err := c.client.Heartbeat(ctx, ctrl.HeartbeatRequest{BrokerID: c.n.cfg.NodeID, BrokerEpoch: c.epoch.Load(),
			MetadataOffset: c.appliedIndex()})
		cancel()
		switch {
		case errors.Is(err, kerr.StaleBrokerEpoch), errors.Is(err, kerr.BrokerIDNotRegistered):
			c.n.log.Warn("broker epoch is no longer current; registering again", "epoch", c.epoch.Load(), "err", err)
			c.epoch.Store(0)
			continue
		case err != nil:
			if c.ctx.Err() == nil {
				c.n.log.Debug("heartbeat failed", "err", err)
			}
		default:
			if was := c.fenced.Swap(r.Fenced); was != r.Fenced {
				c.n.log.Info("broker fencing changed", "fenced", r.Fenced, "epoch", c.epoch.Load())
			}
		}
		c.sleep(c.cfg.HeartbeatInterval)
	}
}

func (c *cluster) register() error {
	host, port := c.n.advertised()
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	e, err := c.client.RegisterBroker(ctx, ctrl.RegisterBroker{ID: c.n.cfg.NodeID, Incarnation: c.incarnation,
		Listeners: []ctrl.Endpoint{{Name: "PLAINTEXT", Host: host, Port: port}}, Rack: c.n.cfg.Rack})
	if err != nil {
		return err
	}
	c.epoch.Store(e)
	c.fenced.Store(true)
	c.n.log.Info("broker registered", "node_id", c.n.cfg.NodeID, "epoch", e)
	return nil
}

func (c *cluster) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
	case <-t.C:
	}
}

// stop leaves the cluster: controlled shutdown first (leaderships move to
// other replicas while this broker still serves), then the loops, the
// fetchers, the controller and its listener.
func (c *cluster) stop(ctx context.Context) {
	if c.client != nil && c.epoch.Load() != 0 && c.n.srv != nil && c.othersLive() {
		sctx, cancel := context.WithTimeout(ctx, c.cfg.ShutdownTimeout)
		if err := c.client.ControlledShutdown(sctx, c.n.cfg.NodeID, c.epoch.Load()); err != nil {
			c.n.log.Warn("controlled shutdown failed; exiting anyway", "err", err)
		} else {
			// Wait (briefly) until this broker leads nothing, so clients
			// are redirected before the listener closes.
			_ = c.waitView(sctx, func(s *ctrl.State) bool { return !leadsAny(s, c.n.cfg.NodeID) })
		}
		cancel()
	}
	c.cancel()
	if c.fetch != nil {
		c.fetch.close()
	}
	c.wg.Wait()
	c.resignAll()
	if c.raft != nil {
		c.raft.Stop()
	}
	if c.net != nil {
		c.net.Close()
	}
	if c.client != nil {
		c.client.Close()
	}
}

// othersLive reports whether another broker is live to take over this
// one's leaderships (else controlled shutdown has nothing to move to).
func (c *cluster) othersLive() bool {
	s, _ := c.currentView()
	for _, b := range s.LiveBrokers() {
		if b.ID != c.n.cfg.NodeID {
			return true
		}
	}
	return false
}

func leadsAny(s *ctrl.State, id int32) bool {
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

// adjustLeaders runs, every leader.imbalance.check.interval.seconds while
// this node is the active controller, Kafka's two periodic elections: one for
// offline partitions that have become electable (unclean ones where
// unclean.leader.election.enable allows them, e.g. after a controller
// restarted with the static key on), and, with auto.leader.rebalance.enable,
// handing leadership back to preferred replicas (after a failover every
// partition of the dead broker stays on its substitute until then).
func (c *cluster) adjustLeaders() {
	for c.ctx.Err() == nil {
		c.sleep(c.cfg.LeaderImbalanceCheck)
		if c.raft.LeaderID() != ctrl.RaftID(c.n.cfg.NodeID) {
			continue
		}
		c.periodicElection("offline", c.raft.ElectOfflineLeaders, "elected leaders for offline partitions")
		if c.cfg.AutoLeaderRebalance {
			c.periodicElection("preferred", c.raft.ElectPreferredLeaders, "moved leaderships back to preferred replicas")
		}
	}
}

func (c *cluster) periodicElection(kind string, elect func(func(int, error)) error, done string) {
	err := elect(func(moved int, err error) {
		if err == nil && moved > 0 {
			c.n.log.Info(done, "partitions", moved)
		}
	})
	if err != nil && !errors.Is(err, ctrl.ErrNotLeader) && c.ctx.Err() == nil {
		c.n.log.Warn("periodic leader election failed", "kind", kind, "err", err)
	}
}
