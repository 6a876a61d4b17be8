package group

import "github.com/twmb/franz-go/pkg/kerr"

// Static membership (KIP-345): a member identified by group.instance.id
// keeps its place across restarts.

// replaceStaticMember is updateStaticMemberAndRebalance: a static member
// restarted and rejoined without its id. The new id takes over the old
// member (the old id is fenced from now on). In a Stable group whose
// selected protocol would not change there is no rebalance: the group record
// is rewritten and the member gets the current generation and assignment.
func (c *Coordinator) replaceStaticMember(g *group, oldID, newID string, j joinArgs, fx *effects) {
	m := g.byID[oldID]
	if m == nil { // BUG: static map and members disagree
		c.lg.Error("BUG: static member id not in group", "group", g.id, "member", oldID)
		fx.join(j.w, joinError("", kerr.UnknownServerError.Code))
		return
	}
	oldLeader := g.leader
	c.renameMember(g, m, oldID, newID, fx)
	c.heartbeat(g, m)
	oldProtocols, oldRebalance, oldSession := m.protocols, m.rebalanceTimeoutMs, m.sessionTimeoutMs
	g.updateMember(m, j.protocols, j.rebalanceMs, j.req.SessionTimeoutMillis, j.w)

	switch g.state {
	case stateStable:
		if g.protocol == nil || *g.protocol != g.selectProtocol() {
			c.maybePrepareRebalance(g, fx, "static member "+newID+" changed the group's protocol")
			return
		}
		generation, w, skip := g.generation, j.w, j.req.Version >= 9
		c.storeGroup(g, nil, func(code int16, fx *effects) {
			if m.join != w {
				return // answered by a rebalance that started meanwhile
			}
			if code != 0 {
				c.lg.Warn("failed to persist static member replacement", "group", g.id, "member", newID,
					"error", kerr.ErrorForCode(code))
				g.updateMember(m, oldProtocols, oldRebalance, oldSession, nil)
				if g.generation == generation && m.id == newID {
					c.renameMember(g, m, newID, oldID, fx)
				}
				c.heartbeat(g, m)
				jr := joinSuccess(g, "", false)
				jr.code, jr.leader = code, oldLeader
				fx.join(w, jr)
				return
			}
			g.setJoin(m, nil)
			c.heartbeat(g, m) // its session was not watched while it waited
			if skip {
				// v9+ (KIP-814): a static leader learns it leads, with the member
				// list, but is told to skip the assignment.
				isLeader := m.id == g.leader
				jr := joinSuccess(g, m.id, isLeader)
				jr.skip = isLeader
				fx.join(w, jr)
				return
			}
			// Before v9 the old leader id is returned, so a restarted leader
			// does not run a pointless assignment in a Stable group.
			jr := joinSuccess(g, m.id, false)
			jr.leader = oldLeader
			fx.join(w, jr)
		})
	case stateCompletingRebalance:
		// The leader may be assigning to the old id; start over.
		c.prepareRebalance(g, fx, "static member "+newID+" rejoined during CompletingRebalance")
	case statePreparingRebalance:
		// It simply takes part in the rebalance under its new id.
	default:
		c.lg.Error("BUG: static member in a group without members", "group", g.id, "state", g.state.String())
	}
}

// renameMember moves m from id from to id to, fencing requests parked under
// the old id (Kafka's replaceStaticMember).
func (c *Coordinator) renameMember(g *group, m *member, from, to string, fx *effects) {
	if m.join != nil {
		fx.join(m.join, joinError(from, kerr.FencedInstanceID.Code))
		g.setJoin(m, nil)
	}
	if m.sync != nil {
		fx.sync(m.sync, kerr.FencedInstanceID.Code, nil, nil, nil)
		m.sync = nil
	}
	delete(g.byID, from)
	m.id = to
	g.byID[to] = m
	if g.leader == from {
		g.leader = to
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = to
	}
	if _, ok := g.pendingSync[from]; ok {
		delete(g.pendingSync, from)
		g.pendingSync[to] = struct{}{}
	}
}
