package ctrl

import (
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Transport carries raft messages between controllers.
type Transport interface {
	// Send hands msgs over for delivery. It must not block on the network and must not call back into the sending
	// Node before returning (Node holds its lock while sending). Dropping messages is allowed: raft retries. For a
	// MsgSnap the transport should later call the sender's ReportSnapshot; for an unreachable peer ReportUnreachable.
	Send(msgs []raftpb.Message)
}

// Clock gives the active controller its notion of time for broker sessions. Tests use FakeClock.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the wall clock.
var SystemClock Clock = systemClock{}

// RaftID maps a Kafka node.id (which may be 0) to a raft id (which must not be).
func RaftID(nodeID int32) uint64 { return uint64(nodeID) + 1 }

// Config configures a Node.
type Config struct {
	ID        uint64   // this controller's raft id (RaftID(node.id))
	Peers     []uint64 // the initial voters, this one included; used only when Dir holds no state yet
	Dir       string   // e.g. <data-dir>/__cluster_metadata-0
	FS        FS       // nil: OSFS
	Transport Transport
	Clock     Clock // nil: SystemClock
	// ElectionTicks and HeartbeatTicks are in Tick calls (defaults 10 and 1). With a 100 ms tick that is a 1-2 s
	// election timeout (randomized in [E, 2E)), well inside Kafka's 9 s broker session.
	ElectionTicks, HeartbeatTicks int
	// SnapshotEvery: take a snapshot and compact after this many applied entries (default 10000).
	SnapshotEvery uint64
	// SessionTimeout is broker.session.timeout.ms (default 9 s).
	SessionTimeout time.Duration
	// SessionGrace: when this controller becomes active, every registered broker gets only this long (instead of
	// SessionTimeout) to send it a first heartbeat; after that its normal session applies. In combined mode the old
	// active controller may have died with its broker, which should then be fenced in about a second, not 9.
	// 0 (or above SessionTimeout) means SessionTimeout.
	SessionGrace time.Duration
	// VoterSessionGrace replaces SessionGrace for brokers whose node id is a voter's (combined mode: one process).
	// Their Client learns the new leader from the local raft and abandons calls stuck on the old one, so they
	// check in within about a heartbeat interval; this can be much shorter. 0 means SessionGrace.
	VoterSessionGrace time.Duration
	// UncleanLeaderElection is the static unclean.leader.election.enable: elections fall back to it after the
	// topic's config and the cluster-wide dynamic default.
	UncleanLeaderElection bool
	// OnApply, when set, is called after a Process cycle that applied at least one committed entry (or a
	// snapshot), with the applied index, without the Node's lock, on the goroutine running Process. It may call
	// the Node.
	OnApply func(appliedIndex uint64)
	Logger  raft.Logger // nil: raft's default logger with info messages discarded
}

// Errors returned by Node.
var (
	ErrNotLeader = errors.New("ctrl: this controller is not the active controller") // answer NOT_CONTROLLER
	// ErrLeadershipLost: this controller stopped leading before the proposal was applied. The outcome is unknown:
	// the next leader may still commit it. Re-read the state before retrying.
	ErrLeadershipLost = errors.New("ctrl: leadership lost before the proposal was applied")
	ErrStopped        = errors.New("ctrl: controller stopped")
)

// Node is one controller: a raft RawNode, its durable storage, the applied metadata State and, while it leads,
// the broker sessions. All methods are safe for concurrent use; they serialize on one mutex. Callbacks passed to
// Propose and friends run without that mutex held, on the goroutine that called Process (or Tick), so they may
// call back into the Node.
type Node struct {
	mu        sync.Mutex
	cfg       Config
	rn        *raft.RawNode
	storage   *raft.MemoryStorage
	wal       *WAL
	state     *State
	confState raftpb.ConfState
	snapIndex uint64
	leading   bool
	err       error // sticky: storage failed or Stop was called
	pending   map[uint64]func(uint64, error)
	seq       uint64
	sess      session
	fo        failoverView
	ready     []func() // callbacks gathered under mu, run after unlock
	wake      chan struct{}
	applied   chan struct{} // closed (and replaced) when AppliedIndex moves; nil until someone waits
	pid       pidAlloc      // producer id blocks proposed but not applied yet

	// reassign: reassignment completions proposed and not applied yet, by partition: the partition epoch decided on.
	reassign map[partKey]int32
}

// NewNode opens (or creates) the controller's storage in cfg.Dir and starts its raft state machine. A fresh
// directory bootstraps a cluster of cfg.Peers; an existing one restarts from its snapshot and log.
func NewNode(cfg Config) (*Node, *Recovered, error) {
	if cfg.ID == 0 || cfg.Transport == nil {
		return nil, nil, errors.New("ctrl: Config needs ID and Transport")
	}
	if cfg.FS == nil {
		cfg.FS = OSFS{}
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 10000
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 9 * time.Second
	}
	wal, rec, err := OpenWAL(cfg.FS, cfg.Dir)
	if err != nil {
		return nil, nil, err
	}
	n := &Node{cfg: cfg, storage: raft.NewMemoryStorage(), wal: wal, state: NewState(),
		pending: map[uint64]func(uint64, error){}, wake: make(chan struct{}, 1)}
	n.state.uncleanDefault = cfg.UncleanLeaderElection
	if raft.IsEmptySnap(rec.Snapshot) && isEmptyHardState(rec.HardState) && len(rec.Entries) == 0 {
		// Fresh: bootstrap with a snapshot at index 1 naming the voters (rafttest does the same), made durable first.
		if len(cfg.Peers) == 0 {
			return nil, nil, errors.New("ctrl: empty controller directory and no Peers to bootstrap")
		}
		data, _ := NewState().MarshalSnapshot()
		rec.Snapshot = raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1,
			ConfState: raftpb.ConfState{Voters: append([]uint64(nil), cfg.Peers...)}}}
		rec.HardState = raftpb.HardState{Term: 1, Commit: 1}
		if err := wal.SaveSnapshot(rec.Snapshot, rec.HardState, nil); err != nil {
			return nil, nil, err
		}
	}
	if err := n.restore(rec); err != nil {
		return nil, nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = quietLogger
	}
	n.rn, err = raft.NewRawNode(&raft.Config{ID: cfg.ID, ElectionTick: cfg.ElectionTicks, HeartbeatTick: cfg.HeartbeatTicks,
		Storage: n.storage, Applied: n.state.AppliedIndex, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
		CheckQuorum: true, PreVote: true, DisableProposalForwarding: true, Logger: lg})
	if err != nil {
		return nil, nil, fmt.Errorf("ctrl: start raft: %w", err)
	}
	return n, rec, nil
}

func (n *Node) restore(rec *Recovered) error {
	if !raft.IsEmptySnap(rec.Snapshot) {
		st, err := UnmarshalSnapshot(rec.Snapshot.Data)
		if err != nil {
			return err
		}
		st.AppliedIndex = rec.Snapshot.Metadata.Index
		if err := n.storage.ApplySnapshot(rec.Snapshot); err != nil {
			return fmt.Errorf("ctrl: restore snapshot: %w", err)
		}
		n.state, n.confState, n.snapIndex = st, rec.Snapshot.Metadata.ConfState, rec.Snapshot.Metadata.Index
		n.state.uncleanDefault = n.cfg.UncleanLeaderElection
	}
	if err := n.storage.SetHardState(rec.HardState); err != nil {
		return fmt.Errorf("ctrl: restore hard state: %w", err)
	}
	if err := n.storage.Append(rec.Entries); err != nil {
		return fmt.Errorf("ctrl: restore entries: %w", err)
	}
	return nil
}

// quietLogger drops raft's chatter; pass Config.Logger to see it.
var quietLogger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}
