package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Member liveness: session timers, pending member ids, and removal.

// newMemberJoinTimeout is Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: a
// member's first JoinGroup is parked at most this long, since a client that
// gave up on it cannot heartbeat without a member id.
const newMemberJoinTimeout = 5 * time.Minute

// heartbeat is completeAndScheduleNextHeartbeatExpiration: the member's
// session starts over.
func (c *Coordinator) heartbeat(g *group, m *member) {
	c.scheduleSession(g, m, msDuration(m.sessionTimeoutMs))
}

func (c *Coordinator) scheduleSession(g *group, m *member, d time.Duration) {
	now := c.clock.Now()
	m.deadline = now.Add(d)
	if m.timer != nil && !m.deadline.Before(m.timerAt) {
		return // the armed timer fires first and re-arms for the new deadline
	}
	c.armSession(g, m, now, d)
}

func (c *Coordinator) armSession(g *group, m *member, now time.Time, d time.Duration) {
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timerGen++
	gen := m.timerGen
	m.timerAt = now.Add(d)
	m.timer = c.clock.AfterFunc(d, func() { c.onSessionExpired(g, m, gen) })
}

// onSessionExpired is onExpireHeartbeat: members parked in JoinGroup or
// SyncGroup count as alive (the rebalance and sync timeouts deal with them),
// except new members, whose first join may have been abandoned.
func (c *Coordinator) onSessionExpired(g *group, m *member, gen uint64) {
	var fx effects
	g.mu.Lock()
	if !g.dead && m.timerGen == gen && g.byID[m.id] == m {
		m.timer = nil
		if now := c.clock.Now(); now.Before(m.deadline) {
			c.armSession(g, m, now, m.deadline.Sub(now))
		} else if m.isNew || (m.join == nil && m.sync == nil) {
			c.lg.Info("member failed, removing it from the group", "group", g.id, "member", m.id,
				"generation", g.generation, "new", m.isNew)
			c.removeMemberAndUpdateGroup(g, m, &fx)
		}
	}
	g.mu.Unlock()
	c.flush(&fx)
}

func (c *Coordinator) addPending(g *group, id string, sessionMs int32) {
	pm := &pendingMember{gen: 1}
	g.pending[id] = pm
	pm.timer = c.clock.AfterFunc(msDuration(sessionMs), func() { c.onPendingExpired(g, id, pm, 1) })
}

func (c *Coordinator) onPendingExpired(g *group, id string, pm *pendingMember, gen uint64) {
	var fx effects
	g.mu.Lock()
	if !g.dead && g.pending[id] == pm && pm.gen == gen {
		c.lg.Info("pending member removed after session timeout", "group", g.id, "member", id)
		delete(g.pending, id)
		c.tryCompleteJoin(g, &fx)
		c.dropIfVacuous(g)
	}
	g.mu.Unlock()
	c.flush(&fx)
}

// removeMemberAndUpdateGroup takes m out and lets the group react: a new
// rebalance from Stable or CompletingRebalance, maybe the end of the current
// one from PreparingRebalance. A parked JoinGroup is answered
// UNKNOWN_MEMBER_ID so a live client rejoins (Kafka); a parked SyncGroup the
// same (Kafka leaves it unanswered).
func (c *Coordinator) removeMemberAndUpdateGroup(g *group, m *member, fx *effects) {
	c.removeQuietly(g, m, fx)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		c.maybePrepareRebalance(g, fx, "removing member "+m.id)
	case statePreparingRebalance:
		c.tryCompleteJoin(g, fx)
	}
}

// removeQuietly removes m without letting the group react (the caller
// decides what happens next).
func (c *Coordinator) removeQuietly(g *group, m *member, fx *effects) {
	if m.join != nil {
		fx.join(m.join, joinError("", kerr.UnknownMemberID.Code))
	}
	if m.sync != nil {
		fx.sync(m.sync, kerr.UnknownMemberID.Code, nil, nil, nil)
		m.sync = nil
	}
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	m.timerGen++
	g.remove(m.id)
}
