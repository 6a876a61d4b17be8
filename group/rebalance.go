package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinResult is Kafka's JoinGroupResult.
type joinResult struct {
	code         int16
	memberID     string
	generation   int32
	protocolType *string
	protocol     *string
	leader       string
	members      []kmsg.JoinGroupResponseMember
	skip         bool
}

func joinError(memberID string, code int16) joinResult {
	return joinResult{code: code, memberID: memberID, generation: -1}
}

// joinSuccess answers m with the group's current generation; the leader
// gets the member list when withMembers.
func joinSuccess(g *group, memberID string, withMembers bool) joinResult {
	jr := joinResult{
		memberID:     memberID,
		generation:   g.generation,
		protocolType: g.protocolTypeOrNil(),
		protocol:     g.protocol,
		leader:       g.leader,
	}
	if withMembers {
		jr.members = g.memberList()
	} else {
		jr.members = []kmsg.JoinGroupResponseMember{}
	}
	return jr
}

func (fx *effects) join(w *waiter, jr joinResult) {
	r := &kmsg.JoinGroupResponse{Version: w.version}
	r.Default()
	r.ErrorCode = jr.code
	r.Generation = jr.generation
	r.ProtocolType = jr.protocolType // v7+ only on the wire
	r.Protocol = jr.protocol         // nil is written as "" before v7, as Kafka's NoProtocol
	r.LeaderID = jr.leader
	r.MemberID = jr.memberID
	r.Members = jr.members
	r.SkipAssignment = jr.skip
	fx.reply(w.respond, r)
}

func (fx *effects) sync(w *waiter, code int16, ptype, proto *string, assignment []byte) {
	r := &kmsg.SyncGroupResponse{Version: w.version}
	r.Default()
	r.ErrorCode = code
	r.ProtocolType = ptype
	r.Protocol = proto
	if assignment == nil {
		assignment = []byte{}
	}
	r.MemberAssignment = assignment
	fx.reply(w.respond, r)
}

func (c *Coordinator) maybePrepareRebalance(g *group, fx *effects, reason string) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		c.prepareRebalance(g, fx, reason)
	}
}

// prepareRebalance moves g to PreparingRebalance. From Empty the join phase
// is Kafka's InitialDelayedJoin (group.initial.rebalance.delay.ms, extended
// while members keep arriving, never past the rebalance timeout, never
// completed early); otherwise DelayedJoin (the largest rebalance timeout of
// the members, completed as soon as everyone rejoined).
func (c *Coordinator) prepareRebalance(g *group, fx *effects, reason string) {
	if g.state == stateCompletingRebalance {
		c.resetAndPropagateAssignmentError(g, kerr.RebalanceInProgress.Code, fx)
	}
	c.stopSyncTimer(g)
	initial := g.state == stateEmpty
	rebalanceTimeout := msDuration(g.rebalanceTimeoutMs())
	c.lg.Info("preparing to rebalance group", "group", g.id, "state", g.state.String(),
		"generation", g.generation, "partition", g.part, "reason", reason)
	g.setState(statePreparingRebalance, c.nowMs())
	g.initialDelay = initial
	if initial {
		delay := c.cfg.InitialRebalanceDelay
		c.armJoinTimer(g, delay, true, max(rebalanceTimeout-delay, 0))
		return
	}
	c.armJoinTimer(g, rebalanceTimeout, false, 0)
	c.tryCompleteJoin(g, fx)
}

func (c *Coordinator) armJoinTimer(g *group, d time.Duration, initial bool, remaining time.Duration) {
	c.stopJoinTimer(g)
	gen := g.joinGen
	g.joinTimer = c.clock.AfterFunc(d, func() { c.onJoinTimer(g, gen, initial, d, remaining) })
}

func (c *Coordinator) stopJoinTimer(g *group) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.joinGen++
}

func (c *Coordinator) onJoinTimer(g *group, gen uint64, initial bool, delay, remaining time.Duration) {
	var fx effects
	g.mu.Lock()
	if !g.dead && gen == g.joinGen && g.state == statePreparingRebalance {
		g.joinTimer = nil
		if initial && g.newMemberAdded && remaining != 0 {
			g.newMemberAdded = false
			next := min(c.cfg.InitialRebalanceDelay, remaining)
			c.armJoinTimer(g, next, true, max(remaining-delay, 0))
		} else {
			c.completeJoin(g, &fx)
		}
	}
	g.mu.Unlock()
	c.flush(&fx)
}

// tryCompleteJoin is DelayedJoin.tryComplete.
func (c *Coordinator) tryCompleteJoin(g *group, fx *effects) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.hasAllMembersJoined() {
		c.completeJoin(g, fx)
	}
}

// completeJoin is onCompleteJoin: drop dynamic members that did not rejoin,
// start the next generation and answer every parked JoinGroup; the group
// waits in CompletingRebalance for the leader's SyncGroup.
func (c *Coordinator) completeJoin(g *group, fx *effects) {
	c.stopJoinTimer(g)
	g.initialDelay = false
	for _, m := range append([]*member(nil), g.members...) {
		if m.join == nil && m.instanceID == nil {
			c.lg.Info("removing member that did not rejoin", "group", g.id, "member", m.id)
			c.removeQuietly(g, m, fx)
		}
	}
	if !c.maybeElectNewJoinedLeader(g) && len(g.members) > 0 {
		// Only static members that have not rejoined are left: wait another
		// rebalance timeout for them to rejoin or expire.
		c.lg.Error("group could not complete rebalance because no members rejoined", "group", g.id)
		c.armJoinTimer(g, msDuration(g.rebalanceTimeoutMs()), false, 0)
		return
	}
	now := c.nowMs()
	g.generation++
	clear(g.pendingSync)
	if len(g.members) == 0 {
		g.protocol = nil
		g.computeSubscribed()
		g.setState(stateEmpty, now)
		c.lg.Info("group is now empty", "group", g.id, "generation", g.generation, "partition", g.part)
		// A lost record only means the previous generation comes back after a
		// failover, with no live members: harmless, as Kafka reasons.
		c.storeGroup(g, nil, func(code int16, _ *effects) {
			if code != 0 {
				c.lg.Warn("failed to write empty group metadata", "group", g.id, "error", kerr.ErrorForCode(code))
			}
		})
		return
	}
	p := g.selectProtocol()
	g.protocol = &p
	g.computeSubscribed()
	g.setState(stateCompletingRebalance, now)
	c.lg.Info("stabilized group", "group", g.id, "generation", g.generation, "members", len(g.members),
		"protocol", p, "partition", g.part)
	var leaderMembers []kmsg.JoinGroupResponseMember
	for _, m := range g.members {
		if m.join != nil {
			isLeader := m.id == g.leader
			jr := joinSuccess(g, m.id, false)
			if isLeader {
				if leaderMembers == nil {
					leaderMembers = g.memberList()
				}
				jr.members = leaderMembers
			}
			fx.join(m.join, jr)
			g.setJoin(m, nil)
		}
		c.heartbeat(g, m)
		m.isNew = false
		g.pendingSync[m.id] = struct{}{}
	}
	c.armSyncTimer(g)
}

// maybeElectNewJoinedLeader keeps the leader if it rejoined, else picks the
// first member that did.
func (c *Coordinator) maybeElectNewJoinedLeader(g *group) bool {
	if g.leader == "" {
		return false
	}
	if l := g.byID[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.members {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// armSyncTimer is Kafka's DelayedSync: members that have not sent SyncGroup
// within the rebalance timeout after the join phase are removed.
func (c *Coordinator) armSyncTimer(g *group) {
	c.stopSyncTimer(g)
	gen, generation := g.syncGen, g.generation
	g.syncTimer = c.clock.AfterFunc(msDuration(g.rebalanceTimeoutMs()), func() { c.onSyncTimer(g, gen, generation) })
}

func (c *Coordinator) stopSyncTimer(g *group) {
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
	g.syncGen++
}

func (c *Coordinator) onSyncTimer(g *group, gen uint64, generation int32) {
	var fx effects
	g.mu.Lock()
	if !g.dead && gen == g.syncGen && generation == g.generation &&
		(g.state == stateCompletingRebalance || g.state == stateStable) && len(g.pendingSync) > 0 {
		g.syncTimer = nil
		var gone []string
		for id := range g.pendingSync {
			gone = append(gone, id)
		}
		for _, id := range gone {
			if m := g.byID[id]; m != nil {
				c.removeQuietly(g, m, &fx)
			}
		}
		c.lg.Info("removed members that did not send SyncGroup", "group", g.id, "members", gone)
		c.prepareRebalance(g, &fx, "pending sync expired")
	}
	g.mu.Unlock()
	c.flush(&fx)
}

func (c *Coordinator) resetAndPropagateAssignmentError(g *group, code int16, fx *effects) {
	for _, m := range g.members {
		m.assignment = nil
	}
	c.propagateAssignment(g, code, fx)
}

// propagateAssignment answers every parked SyncGroup and restarts those
// members' sessions (their expiry was ignored while they waited).
func (c *Coordinator) propagateAssignment(g *group, code int16, fx *effects) {
	var ptype, proto *string
	if code == 0 {
		ptype, proto = g.protocolTypeOrNil(), g.protocol
	}
	for _, m := range g.members {
		if m.sync == nil {
			continue
		}
		if code == 0 && len(m.assignment) == 0 {
			c.lg.Debug("sending empty assignment", "group", g.id, "member", m.id, "generation", g.generation)
		}
		fx.sync(m.sync, code, ptype, proto, m.assignment)
		m.sync = nil
		c.heartbeat(g, m)
	}
}

// storeGroup appends g's metadata record (assignments from assign, or the
// members' current ones when assign is nil) and runs cb under g.mu once it
// is durable or failed, unless g died meanwhile. g.mu held.
func (c *Coordinator) storeGroup(g *group, assign map[string][]byte, cb func(code int16, fx *effects)) {
	rec := groupMetadataRecord(g, assign)
	c.aq.push(g.part, []Record{rec}, func(err error) {
		var code int16
		if err != nil {
			code = appendErrorCode(err, false)
		}
		var fx effects
		g.mu.Lock()
		if !g.dead {
			cb(code, &fx)
		}
		g.mu.Unlock()
		c.flush(&fx)
	})
}
