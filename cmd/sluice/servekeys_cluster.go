package main

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/node"
)

// clusterConf is what the cluster keys say; finishCluster turns it into
// node.Config.Cluster once every key and the listeners are known. Without
// controller.quorum.voters the broker runs standalone (no controller, RF 1).
type clusterConf struct {
	roles         []string // process.roles; nil: unset
	voters        map[int32]string
	heartbeat     time.Duration
	session       time.Duration
	tick          time.Duration
	lagMax        time.Duration
	fetchWait     time.Duration
	fetchMax      int32
	fetchResp     int32
	fetchBack     time.Duration
	shutdownMax   time.Duration
	rebalance     *bool // nil: unset (default true)
	followerPages string
	imbalance     time.Duration
	unclean       bool          // unclean.leader.election.enable
	hwCkpt        time.Duration // replica.high.watermark.checkpoint.interval.ms
}

var clusterProps = []property{
	{name: "process.roles", set: func(c *serveConfig, v string) error {
		c.cl.roles = nil
		for _, r := range splitList(v) {
			r = strings.ToLower(r)
			if r != node.RoleBroker && r != node.RoleController {
				return fmt.Errorf("role %q: want broker, controller or both", r)
			}
			c.cl.roles = append(c.cl.roles, r)
		}
		if len(c.cl.roles) == 0 {
			return fmt.Errorf("no role given")
		}
		return nil
	}},
	{name: "controller.quorum.voters", set: func(c *serveConfig, v string) error {
		voters, err := parseVoters(v)
		c.cl.voters = voters
		return err
	}},
	{name: "broker.heartbeat.interval.ms", def: "250", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.cl.heartbeat = d })},
	{name: "broker.session.timeout.ms", def: "9000", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.cl.session = d })},
	{name: "controller.tick.ms", def: "50", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.cl.tick = d })},
	{name: "replica.lag.time.max.ms", def: "30000", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.cl.lagMax = d })},
	{name: "replica.fetch.wait.max.ms", def: "500", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.cl.fetchWait = d })},
	{name: "replica.fetch.max.bytes", def: "1048576", set: num(1, math.MaxInt32, func(c *serveConfig, n int64) { c.cl.fetchMax = int32(n) })},
	{name: "replica.fetch.response.max.bytes", def: "10485760", set: num(1, math.MaxInt32, func(c *serveConfig, n int64) { c.cl.fetchResp = int32(n) })},
	{name: "replica.fetch.backoff.ms", def: "100", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.cl.fetchBack = d })},
	{name: "auto.leader.rebalance.enable", def: "true", set: boolean(func(c *serveConfig, b bool) { c.cl.rebalance = &b })},
	{name: "leader.imbalance.check.interval.seconds", def: "300", set: duration(1, time.Second, func(c *serveConfig, d time.Duration) { c.cl.imbalance = d })},
	{name: "controlled.shutdown.timeout.ms", def: "10000", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.cl.shutdownMax = d })},
	{name: "log.follower.page.cache", def: "direct", set: func(c *serveConfig, v string) error {
		switch v {
		case "direct", "drop", "keep":
			c.cl.followerPages = v
			return nil
		}
		return fmt.Errorf("want direct, drop or keep, got %q", v)
	}},
	{name: "unclean.leader.election.enable", def: "false", set: boolean(func(c *serveConfig, b bool) { c.cl.unclean = b })},
	{name: "replica.high.watermark.checkpoint.interval.ms", def: "5000", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.cl.hwCkpt = d })},
}

func init() { serveProps = append(serveProps, clusterProps...) }

// parseVoters parses Kafka's controller.quorum.voters: id@host:port,...
func parseVoters(v string) (map[int32]string, error) {
	out := map[int32]string{}
	for _, e := range splitList(v) {
		ids, addr, ok := strings.Cut(e, "@")
		if !ok {
			return nil, fmt.Errorf("%q: want id@host:port", e)
		}
		id, err := strconv.ParseInt(ids, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%q: node id %q is not a non-negative integer", e, ids)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return nil, fmt.Errorf("%q: want id@host:port", e)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q: bad port %q", e, port)
		}
		if _, dup := out[int32(id)]; dup {
			return nil, fmt.Errorf("node id %d appears twice", id)
		}
		out[int32(id)] = addr
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no voter given")
	}
	return out, nil
}

// finishCluster builds node.Config.Cluster. It returns the key an error is
// about. The controller listener is the listeners entry named in
// controller.listener.names (CONTROLLER when unset); without one a voter
// binds its own controller.quorum.voters address.
func (c *serveConfig) finishCluster() (string, error) {
	cl := &c.cl
	if cl.voters == nil {
		if cl.roles != nil {
			// A stock KRaft file (dynamic quorum via
			// controller.quorum.bootstrap.servers) still loads.
			c.warn("process.roles is ignored without controller.quorum.voters: running standalone (one broker)",
				"process.roles", strings.Join(cl.roles, ","))
		}
		return "", nil
	}
	cc := node.DefaultClusterConfig(cl.voters)
	_, inVoters := cl.voters[c.node.NodeID]
	cc.Broker, cc.Controller = true, inVoters
	if cl.roles != nil {
		cc.Broker, cc.Controller = false, false
		for _, r := range cl.roles {
			cc.Broker = cc.Broker || r == node.RoleBroker
			cc.Controller = cc.Controller || r == node.RoleController
		}
	}
	if cc.Controller && !inVoters {
		return "process.roles", fmt.Errorf("node.id=%d has the controller role but is not in controller.quorum.voters", c.node.NodeID)
	}
	if !cc.Controller && inVoters {
		return "controller.quorum.voters", fmt.Errorf("lists node.id=%d, whose process.roles has no controller", c.node.NodeID)
	}
	names := c.lis.controller
	if len(names) == 0 {
		names = map[string]bool{"CONTROLLER": true}
	}
	for _, e := range c.lis.listeners {
		if names[e.name] {
			cc.ControllerListen = e.addr
		}
	}
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&cc.HeartbeatInterval, cl.heartbeat)
	set(&cc.SessionTimeout, cl.session)
	set(&cc.RaftTick, cl.tick)
	set(&cc.ReplicaLagTimeMax, cl.lagMax)
	set(&cc.ReplicaFetchWait, cl.fetchWait)
	set(&cc.ReplicaFetchBackoff, cl.fetchBack)
	set(&cc.ShutdownTimeout, cl.shutdownMax)
	cc.FollowerPageCache = cl.followerPages
	cc.UncleanLeaderElection = cl.unclean
	set(&cc.HWCheckpointInterval, cl.hwCkpt)
	set(&cc.LeaderImbalanceCheck, cl.imbalance)
	if cl.rebalance != nil {
		cc.AutoLeaderRebalance = *cl.rebalance
	}
	if cl.fetchMax > 0 {
		cc.ReplicaFetchMaxB = cl.fetchMax
	}
	if cl.fetchResp > 0 {
		cc.ReplicaFetchRespMax = cl.fetchResp
	}
	if cc.SessionTimeout <= cc.HeartbeatInterval {
		return "broker.session.timeout.ms", fmt.Errorf("%v must exceed broker.heartbeat.interval.ms (%v)", cc.SessionTimeout, cc.HeartbeatInterval)
	}
	c.node.Cluster = cc
	return "", nil
}
