package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// validateMember is ClassicGroup.validateMember (Kafka 4): a static member is
// identified by its instance id, which must map to the given member id.
func validateMember(g *group, memberID string, instanceID *string) int16 {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if cur != memberID {
			return kerr.FencedInstanceID.Code
		}
		return 0
	}
	if !g.has(memberID) {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// handleSync serves SyncGroup v0-v5 (GroupCoordinator.handleSyncGroup).
func (c *Coordinator) handleSync(req *kmsg.SyncGroupRequest, respond func(kmsg.Response)) {
	w := &waiter{respond: respond, version: req.Version}
	var fx effects
	defer c.flush(&fx)
	fail := func(code int16) { fx.sync(w, code, nil, nil, nil) }
	if req.Version >= 5 && (req.ProtocolType == nil || req.Protocol == nil) {
		fail(kerr.InconsistentGroupProtocol.Code) // mandatory from v5 (KafkaApis checks first)
		return
	}
	if req.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	g, code := c.lockGroup(req.Group, false)
	switch {
	case code == kerr.CoordinatorLoadInProgress.Code:
		// The rebalance state was lost with the old coordinator: send the
		// member back to JoinGroup. Old clients do not expect LOAD_IN_PROGRESS.
		fail(kerr.RebalanceInProgress.Code)
		return
	case code != 0:
		fail(code)
		return
	case g == nil:
		fail(kerr.UnknownMemberID.Code)
		return
	}
	defer g.mu.Unlock()
	if code := validateMember(g, req.MemberID, req.InstanceID); code != 0 {
		fail(code)
		return
	}
	if req.Generation != g.generation {
		fail(kerr.IllegalGeneration.Code)
		return
	}
	if req.ProtocolType != nil && (g.protocolType == "" || *req.ProtocolType != g.protocolType) ||
		req.Protocol != nil && (g.protocol == nil || *req.Protocol != *g.protocol) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		fail(kerr.RebalanceInProgress.Code)
	case stateCompletingRebalance:
		if m.sync != nil { // a retry: Kafka overwrites the callback, we answer the old one
			fx.sync(m.sync, kerr.RebalanceInProgress.Code, nil, nil, nil)
		}
		m.sync = w
		delete(g.pendingSync, m.id)
		if m.id == g.leader {
			c.storeAssignment(g, req)
		}
	case stateStable:
		delete(g.pendingSync, m.id)
		fx.sync(w, 0, g.protocolTypeOrNil(), g.protocol, m.assignment)
		c.heartbeat(g, m)
	default: // Empty: no member can be valid
		fail(kerr.UnknownMemberID.Code)
	}
}

// storeAssignment persists the leader's assignment; once durable every
// parked SyncGroup gets its share and the group is Stable. If the write
// fails, they get the mapped error and the group rebalances (Kafka).
func (c *Coordinator) storeAssignment(g *group, req *kmsg.SyncGroupRequest) {
	assign := make(map[string][]byte, len(g.members))
	for _, a := range req.GroupAssignment {
		if g.has(a.MemberID) { // last one wins, as in Kafka's map
			assign[a.MemberID] = append([]byte{}, a.MemberAssignment...)
		}
	}
	for _, m := range g.members {
		if _, ok := assign[m.id]; !ok {
			c.lg.Warn("setting empty assignment for member", "group", g.id, "member", m.id, "generation", g.generation)
			assign[m.id] = []byte{}
		}
	}
	c.lg.Info("assignment received from leader", "group", g.id, "leader", g.leader,
		"generation", g.generation, "members", len(g.members))
	generation := g.generation
	c.storeGroup(g, assign, func(code int16, fx *effects) {
		if g.state != stateCompletingRebalance || g.generation != generation {
			return // another rebalance took over while the record was written
		}
		if code != 0 {
			c.resetAndPropagateAssignmentError(g, code, fx)
			c.maybePrepareRebalance(g, fx, "error storing group assignment")
			return
		}
		for _, m := range g.members {
			m.assignment = assign[m.id]
		}
		c.propagateAssignment(g, 0, fx)
		g.setState(stateStable, c.nowMs())
	})
}

// handleHeartbeat serves Heartbeat v0-v4.
func (c *Coordinator) handleHeartbeat(req *kmsg.HeartbeatRequest, respond func(kmsg.Response)) {
	r := &kmsg.HeartbeatResponse{Version: req.Version}
	r.Default()
	r.ErrorCode = c.heartbeatCode(req)
	respond(r)
}

func (c *Coordinator) heartbeatCode(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g, code := c.lockGroup(req.Group, false)
	switch {
	case code == kerr.CoordinatorLoadInProgress.Code:
		return 0 // Kafka answers blindly while loading: the member's state is on its way
	case code != 0:
		return code
	case g == nil:
		return kerr.UnknownMemberID.Code
	}
	defer g.mu.Unlock()
	if code := validateMember(g, req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case stateCompletingRebalance, stateStable:
		c.heartbeat(g, m)
		return 0
	case statePreparingRebalance:
		c.heartbeat(g, m)
		return kerr.RebalanceInProgress.Code
	}
	return kerr.UnknownMemberID.Code
}
