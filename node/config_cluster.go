package node

import (
	"fmt"
	"time"
)

// Process roles (process.roles).
const (
	RoleBroker     = "broker"
	RoleController = "controller"
)

// ClusterConfig turns a Node into a member of a replicated cluster: a Raft
// controller quorum (ctrl) holds the metadata and partitions are replicated
// between brokers (repl). A nil Config.Cluster is standalone mode: one
// broker, metadata in sluice-metadata.json, replication factor 1.
type ClusterConfig struct {
	// Broker and Controller are process.roles: a combined node has both; a
	// dedicated controller serves no Kafka clients; a broker-only node
	// follows the controllers' metadata log.
	Broker, Controller bool
	// Voters is controller.quorum.voters: node id -> controller host:port.
	Voters map[int32]string
	// ControllerListen is the CONTROLLER listener (host:port) a voter binds;
	// empty: this node's entry in Voters.
	ControllerListen string

	HeartbeatInterval time.Duration // broker.heartbeat.interval.ms (sluice default 250 ms; Kafka 2 s)
	SessionTimeout    time.Duration // broker.session.timeout.ms (9 s, Kafka's)
	// SessionGrace is how long a newly active controller waits for a
	// broker-only node's first heartbeat before fencing it (sluice-only;
	// default 2 heartbeat timeouts + 1 interval, at least 2 s, at most the
	// session): such a broker finds the new controller only once its call
	// to the old one times out.
	SessionGrace time.Duration
	// VoterSessionGrace is SessionGrace for a broker that is also a voter
	// (combined mode; sluice-only; default 3 heartbeat intervals, at least
	// 1 s, at most SessionGrace). Its controller client drops a call stuck
	// on the old controller as soon as its own raft learns the new leader
	// and heartbeats that one: within about an interval of the election,
	// which leaves the rest of the grace for scheduling hiccups. A combined
	// node killed with the old controller is fenced after this grace, or at
	// once when its controller port refuses connections.
	VoterSessionGrace time.Duration
	// RaftTick is the controller's raft tick (sluice-only, 50 ms); an
	// election takes 10-20 ticks.
	RaftTick time.Duration

	ReplicaLagTimeMax   time.Duration // replica.lag.time.max.ms (30 s)
	ReplicaFetchWait    time.Duration // replica.fetch.wait.max.ms (500 ms)
	ReplicaFetchMaxB    int32         // replica.fetch.max.bytes (1 MiB)
	ReplicaFetchRespMax int32         // replica.fetch.response.max.bytes (10 MiB)
	ReplicaFetchBackoff time.Duration // replica.fetch.backoff.ms (1 s; sluice uses 100 ms)
	// AutoLeaderRebalance is auto.leader.rebalance.enable (true): the active
	// controller moves leadership back to preferred replicas every
	// LeaderImbalanceCheck (leader.imbalance.check.interval.seconds, 300 s).
	// sluice does not apply leader.imbalance.per.broker.percentage: any
	// partition not led by its live, in-sync preferred replica moves.
	AutoLeaderRebalance  bool
	LeaderImbalanceCheck time.Duration
	// ShutdownTimeout bounds controlled shutdown (moving leadership away)
	// before Close gives up and exits anyway.
	ShutdownTimeout time.Duration
	// FollowerPageCache is log.follower.page.cache: what a follower's
	// appends do with the page cache, where nothing reads them unless the
	// replica becomes leader. "direct" (the default, also for ""): write
	// with O_DIRECT, never entering the cache (segstore.Log.SetColdWrites);
	// "drop": write through the cache and drop synced pages; "keep":
	// Kafka's behaviour.
	FollowerPageCache string
	// HWCheckpointInterval is replica.high.watermark.checkpoint.interval.ms
	// (5 s): how often each local replica's high watermark is written to
	// <data-dir>/replication-offset-checkpoint (also on shutdown).
	HWCheckpointInterval time.Duration
	// UncleanLeaderElection is the static unclean.leader.election.enable
	// (false): a controller's default for topics whose own config and the
	// cluster-wide dynamic default leave it unset (Kafka's lookup order).
	UncleanLeaderElection bool
}

// DefaultClusterConfig returns the defaults for a node with the given roles
// and voters.
func DefaultClusterConfig(voters map[int32]string) *ClusterConfig {
	return &ClusterConfig{
		Broker: true, Controller: true, Voters: voters,
		HeartbeatInterval: 250 * time.Millisecond, SessionTimeout: 9 * time.Second,
		RaftTick:          50 * time.Millisecond,
		ReplicaLagTimeMax: 30 * time.Second, ReplicaFetchWait: 500 * time.Millisecond,
		ReplicaFetchMaxB: 1 << 20, ReplicaFetchRespMax: 10 << 20, ReplicaFetchBackoff: 100 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second, AutoLeaderRebalance: true, LeaderImbalanceCheck: 300 * time.Second,
	}
}

func (c *ClusterConfig) validate(nodeID int32) error {
	if !c.Broker && !c.Controller {
		return fmt.Errorf("node: process.roles is empty: want broker, controller or both")
	}
	if len(c.Voters) == 0 {
		return fmt.Errorf("node: controller.quorum.voters is empty")
	}
	if _, ok := c.Voters[nodeID]; c.Controller && !ok {
		return fmt.Errorf("node: node.id=%d has the controller role but is not in controller.quorum.voters", nodeID)
	}
	if _, ok := c.Voters[nodeID]; !c.Controller && ok {
		return fmt.Errorf("node: node.id=%d is in controller.quorum.voters but process.roles has no controller", nodeID)
	}
	if c.Controller && c.ControllerListen == "" {
		c.ControllerListen = c.Voters[nodeID]
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 250 * time.Millisecond
	}
	if c.SessionTimeout <= c.HeartbeatInterval {
		return fmt.Errorf("node: broker.session.timeout.ms (%v) must exceed broker.heartbeat.interval.ms (%v)",
			c.SessionTimeout, c.HeartbeatInterval)
	}
	if c.SessionGrace <= 0 {
		// Longer than a heartbeat that hung on the old (stopped) controller
		// (heartbeatTimeout) plus an interval plus finding the new one, or
		// live brokers get fenced when the controller hangs.
		c.SessionGrace = min(max(2*c.heartbeatTimeout()+c.HeartbeatInterval, 2*time.Second), c.SessionTimeout)
	}
	if c.VoterSessionGrace <= 0 {
		c.VoterSessionGrace = min(max(3*c.HeartbeatInterval, time.Second), c.SessionGrace)
	}
	if c.RaftTick <= 0 {
		c.RaftTick = 50 * time.Millisecond
	}
	if c.ReplicaLagTimeMax <= 0 {
		c.ReplicaLagTimeMax = 30 * time.Second
	}
	if c.ReplicaFetchWait <= 0 {
		c.ReplicaFetchWait = 500 * time.Millisecond
	}
	if c.ReplicaFetchMaxB <= 0 {
		c.ReplicaFetchMaxB = 1 << 20
	}
	if c.ReplicaFetchRespMax <= 0 {
		c.ReplicaFetchRespMax = 10 << 20
	}
	if c.ReplicaFetchBackoff <= 0 {
		c.ReplicaFetchBackoff = 100 * time.Millisecond
	}
	if c.LeaderImbalanceCheck <= 0 {
		c.LeaderImbalanceCheck = 300 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.HWCheckpointInterval <= 0 {
		c.HWCheckpointInterval = 5 * time.Second
	}
	return nil
}

// heartbeatTimeout bounds one heartbeat call, so a broker whose controller
// hangs moves on to the next voter well inside the new controller's grace.
func (c *ClusterConfig) heartbeatTimeout() time.Duration {
	return min(c.SessionTimeout/2, max(4*c.HeartbeatInterval, time.Second))
}
