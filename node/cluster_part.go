package node

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/ctrl"
	"github.com/sluicemq/sluice/repl"
)

// Role changes of local replicas. Only the metadata goroutine (reconcile,
// under adminMu) changes p.ldr and p.fol, so a partition never has both.

// becomeLeader makes this broker p's leader in ps.LeaderEpoch, or applies
// ISR and min.insync.replicas changes to the Leader of that epoch it
// already is.
func (c *cluster) becomeLeader(t *topic, p *partition, ps repl.PartitionState) {
	if cur := p.ldr.Load(); cur != nil && cur.UpdateState(ps) {
		// reconcile updated the topic's configs first; a new
		// min.insync.replicas applies now, not at the next election.
		cur.SetMinISR(c.n.minInsync(t))
		c.syncHW(p)
		return
	}
	l := p.getLog()
	c.n.hwck.restore(c.n, p, l) // first role since the broker started
	hw := p.hw.Load()
	if f := p.fol.Swap(nil); f != nil {
		c.fetch.unfollow(p, f)
		hw = f.HighWatermark()
	}
	if cur := p.ldr.Swap(nil); cur != nil {
		cur.Resign()
	}
	l.SetColdWrites(false) // consumers read a leader's tail
	ldr := repl.NewLeader(repl.LeaderConfig{
		BrokerID: c.n.cfg.NodeID, LagTimeMax: c.cfg.ReplicaLagTimeMax, MinISR: c.n.minInsync(t),
		Clock: clockFunc(c.n.cfg.Now), AlterPartition: c.alterPartition(t, p),
	}, l, ps, hw)
	p.ldr.Store(ldr)
	c.n.groups.leaderChanged(p)
	c.n.m.leaderChanges.Inc()
	c.n.log.Info("leading partition", "topic", t.name, "partition", p.index, "epoch", ps.LeaderEpoch,
		"isr", ps.ISR, "hw", ldr.HighWatermark(), "leo", l.Offsets().End)
	c.syncHW(p)
}

// becomeFollower makes this broker follow ps.Leader (no fetching while the
// partition has no leader).
func (c *cluster) becomeFollower(s *ctrl.State, p *partition, ps repl.PartitionState) {
	if cur := p.ldr.Swap(nil); cur != nil {
		cur.Resign() // acks=all waiters answer NOT_LEADER_OR_FOLLOWER
		c.n.groups.leaderChanged(p)
		c.n.log.Info("no longer leading partition", "topic", p.topic.name, "partition", p.index, "new_leader", ps.Leader)
		p.notify()
	}
	if f := p.fol.Load(); f != nil {
		if id, ep := f.Leader(); id == ps.Leader && ep == ps.LeaderEpoch {
			return
		}
		p.fol.Store(nil)
		c.fetch.unfollow(p, f)
	}
	c.n.hwck.restore(c.n, p, p.getLog()) // first role since the broker started
	if ps.Leader < 0 {
		return
	}
	addr := brokerAddr(s, ps.Leader)
	if addr == "" {
		c.n.log.Warn("leader has no listener in the metadata", "topic", p.topic.name, "partition", p.index, "leader", ps.Leader)
		return
	}
	p.getLog().SetColdWrites(c.cfg.FollowerPageCache != "keep")
	f := repl.NewFollower(repl.FollowerConfig{BrokerID: c.n.cfg.NodeID}, p.getLog(), ps.Leader, ps.LeaderEpoch, p.hw.Load())
	p.fol.Store(f)
	c.fetch.follow(p, f, ps.Leader, addr)
}

// dropReplica ends every role of p here and deletes its local log (the
// topic is gone or this broker is no longer a replica).
func (c *cluster) dropReplica(p *partition) {
	if cur := p.ldr.Swap(nil); cur != nil {
		cur.Resign()
		c.n.groups.leaderChanged(p)
	}
	if f := p.fol.Swap(nil); f != nil {
		c.fetch.unfollow(p, f)
	}
	l := p.getLog()
	if l == nil {
		return
	}
	p.close()
	if err := c.n.store.DeleteLog(l.Topic(), l.Partition()); err != nil {
		c.n.log.Error("deleting replica log failed", "topic", l.Topic(), "partition", l.Partition(), "err", err)
	}
}

// resignAll drops every leadership (shutdown): waiters answer now.
func (c *cluster) resignAll() {
	for _, t := range c.n.reg.list() {
		for _, p := range c.n.reg.partitions(t) {
			if cur := p.ldr.Swap(nil); cur != nil {
				cur.Resign()
			}
			p.fol.Store(nil)
		}
	}
}

// syncHW publishes the leader's high watermark to consumers (it only grows
// while this broker leads).
func (c *cluster) syncHW(p *partition) {
	if l := p.ldr.Load(); l != nil {
		p.advanceHW(l.HighWatermark())
	}
}

// alterPartition returns the Leader's channel to the controller: each ISR
// proposal goes out as AlterPartition and its answer comes back through
// AlterPartitionDone, on its own goroutine (the Leader must not block).
func (c *cluster) alterPartition(t *topic, p *partition) func(repl.AlterRequest) {
	return func(req repl.AlterRequest) {
		go func() {
			c.n.log.Debug("AlterPartition proposing", "topic", t.name, "partition", p.index, "isr", req.ISR, "epoch", req.PartitionEpoch)
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			defer cancel()
			cp, err := c.client.AlterPartition(ctx, ctrl.AlterPartitionRequest{
				BrokerID: c.n.cfg.NodeID, BrokerEpoch: c.epoch.Load(), Topic: t.name, TopicID: t.id,
				Partition: p.index, LeaderEpoch: req.LeaderEpoch, PartitionEpoch: req.PartitionEpoch, ISR: req.ISR})
			c.n.log.Debug("AlterPartition answered", "topic", t.name, "partition", p.index, "isr", req.ISR, "err", err)
			resp := repl.AlterResponse{LeaderEpoch: req.LeaderEpoch, Err: err}
			if err == nil && cp != nil {
				resp.PartitionEpoch, resp.ISR = cp.PartitionEpoch, cp.ISR
				if len(cp.ISR) < len(p.state().ISR) {
					c.n.m.isrShrinks.Inc()
				} else {
					c.n.m.isrExpands.Inc()
				}
			}
			if err != nil && c.ctx.Err() == nil {
				// Expected while a follower's broker is fenced or shutting
				// down (INELIGIBLE_REPLICA) or the epoch moved on: debug.
				lvl := slog.LevelWarn
				if errors.Is(err, kerr.IneligibleReplica) || errors.Is(err, kerr.FencedLeaderEpoch) {
					lvl = slog.LevelDebug
				}
				c.n.log.Log(c.ctx, lvl, "AlterPartition failed", "topic", t.name, "partition", p.index, "isr", req.ISR, "err", err)
				// The Leader proposes again on the next fetch; holding the
				// answer back a little keeps a refused change from being
				// re-sent on every fetch.
				c.sleep(c.cfg.ReplicaFetchBackoff * 5)
			}
			if l := p.ldr.Load(); l != nil {
				l.AlterPartitionDone(resp)
				c.syncHW(p)
			}
		}()
	}
}

// tickLeaders drives every led partition's timers (acks=all timeouts, ISR
// shrink) about four times a second, and writes the replicas' high
// watermarks to replication-offset-checkpoint every HWCheckpointInterval
// and once more when the broker stops.
func (c *cluster) tickLeaders() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	ck := time.NewTicker(c.cfg.HWCheckpointInterval)
	defer ck.Stop()
	defer c.checkpointHWs()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-ck.C:
			c.checkpointHWs()
			continue
		case <-t.C:
		}
		for _, tp := range c.n.reg.list() {
			for _, p := range c.n.reg.partitions(tp) {
				if l := p.ldr.Load(); l != nil {
					l.Tick()
					c.syncHW(p)
				}
			}
		}
	}
}

// checkpointHWs writes replication-offset-checkpoint. A failure is logged
// and retried at the next interval: a stale file only costs a restarted
// replica a lower starting HW.
func (c *cluster) checkpointHWs() {
	if err := c.n.hwck.write(c.n); err != nil {
		c.n.log.Error("writing the replication offset checkpoint failed", "err", err)
	}
}

// clockFunc adapts Config.Now to repl.Clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }
