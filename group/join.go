package group

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleJoin serves JoinGroup v0-v9 (GroupCoordinator.handleJoinGroup).
func (c *Coordinator) handleJoin(cl Client, req *kmsg.JoinGroupRequest, respond func(kmsg.Response)) {
	w := &waiter{respond: respond, version: req.Version}
	var fx effects
	defer c.flush(&fx)
	if req.Group == "" {
		fx.join(w, joinError(req.MemberID, kerr.InvalidGroupID.Code))
		return
	}
	if code := c.status(req.Group); code != 0 {
		fx.join(w, joinError(req.MemberID, code))
		return
	}
	if req.SessionTimeoutMillis < ms(c.cfg.MinSessionTimeout) || req.SessionTimeoutMillis > ms(c.cfg.MaxSessionTimeout) {
		fx.join(w, joinError(req.MemberID, kerr.InvalidSessionTimeout.Code))
		return
	}
	g, code := c.lockGroup(req.Group, req.MemberID == "")
	if code != 0 {
		fx.join(w, joinError(req.MemberID, code))
		return
	}
	if g == nil {
		fx.join(w, joinError(req.MemberID, kerr.UnknownMemberID.Code))
		return
	}
	defer g.mu.Unlock()

	j := joinArgs{cl: cl, req: req, w: w, protocols: dedupeProtocols(req.Protocols), rebalanceMs: req.RebalanceTimeoutMillis}
	if req.Version == 0 {
		j.rebalanceMs = req.SessionTimeoutMillis // v0 has no rebalance timeout: Kafka uses the session timeout
	}
	switch {
	case !c.acceptJoining(g, req.MemberID):
		if m := g.byID[req.MemberID]; m != nil {
			c.removeQuietly(g, m, &fx)
		} else {
			g.remove(req.MemberID)
		}
		fx.join(w, joinError("", kerr.GroupMaxSizeReached.Code))
	case req.MemberID == "":
		c.newMemberJoin(g, j, &fx)
	default:
		c.currentMemberJoin(g, j, &fx)
	}
	c.tryCompleteJoin(g, &fx)
	c.dropIfVacuous(g)
}

type joinArgs struct {
	cl          Client
	req         *kmsg.JoinGroupRequest
	w           *waiter
	protocols   []protocol
	rebalanceMs int32
}

// ms converts a configured duration to Kafka's int32 milliseconds, saturating.
func ms(d time.Duration) int32 {
	v := d.Milliseconds()
	if v > 1<<31-1 {
		return 1<<31 - 1
	}
	return int32(v)
}

// dedupeProtocols keeps the first of each protocol name: a member supports
// a protocol once, whatever the request repeats.
func dedupeProtocols(in []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, 0, len(in))
next:
	for _, p := range in {
		for _, q := range out {
			if q.name == p.Name {
				continue next
			}
		}
		out = append(out, protocol{name: p.Name, metadata: append([]byte{}, p.Metadata...)})
	}
	return out
}

// acceptJoining is Kafka's group.max.size rule. While preparing a rebalance
// the members that already rejoined count, so the last to rejoin are the
// ones turned away when the limit was lowered.
func (c *Coordinator) acceptJoining(g *group, memberID string) bool {
	max := c.cfg.MaxSize
	if max <= 0 {
		return true
	}
	switch g.state {
	case statePreparingRebalance:
		if m := g.byID[memberID]; m != nil && m.join != nil {
			return true
		}
		return g.numAwaiting < max
	case stateCompletingRebalance, stateStable:
		return g.has(memberID) || len(g.members) < max
	}
	return true
}

// newMemberJoin is doNewMemberJoinGroup: a member without an id.
func (c *Coordinator) newMemberJoin(g *group, j joinArgs, fx *effects) {
	req := j.req
	if !g.supportsProtocols(req.ProtocolType, j.protocols) {
		fx.join(j.w, joinError("", kerr.InconsistentGroupProtocol.Code))
		return
	}
	prefix := j.cl.ID
	if req.InstanceID != nil {
		prefix = *req.InstanceID
	}
	newID := prefix + "-" + newUUID()
	switch {
	case req.InstanceID != nil:
		if old, ok := g.static[*req.InstanceID]; ok {
			c.replaceStaticMember(g, old, newID, j, fx)
		} else {
			c.addMemberAndRebalance(g, newID, j, fx)
		}
	case req.Version >= 4:
		// KIP-394: hand out the id first, so a client that times out and
		// retries does not leave a ghost member behind.
		c.addPending(g, newID, req.SessionTimeoutMillis)
		fx.join(j.w, joinError(newID, kerr.MemberIDRequired.Code))
	default:
		c.addMemberAndRebalance(g, newID, j, fx)
	}
}

// currentMemberJoin is doCurrentMemberJoinGroup: a member rejoining with its id.
func (c *Coordinator) currentMemberJoin(g *group, j joinArgs, fx *effects) {
	req, id := j.req, j.req.MemberID
	if !g.supportsProtocols(req.ProtocolType, j.protocols) {
		fx.join(j.w, joinError(id, kerr.InconsistentGroupProtocol.Code))
		return
	}
	if _, ok := g.pending[id]; ok {
		if req.InstanceID != nil {
			// Kafka throws IllegalStateException here: a pending id is never static.
			fx.join(j.w, joinError(id, kerr.UnknownServerError.Code))
			return
		}
		c.addMemberAndRebalance(g, id, j, fx)
		return
	}
	if req.InstanceID != nil {
		cur, ok := g.static[*req.InstanceID]
		if ok && cur != id {
			fx.join(j.w, joinError(id, kerr.FencedInstanceID.Code))
			return
		}
		if !ok {
			fx.join(j.w, joinError(id, kerr.UnknownMemberID.Code))
			return
		}
	}
	m := g.byID[id]
	if m == nil {
		fx.join(j.w, joinError(id, kerr.UnknownMemberID.Code))
		return
	}
	switch g.state {
	case statePreparingRebalance:
		c.updateMemberAndRebalance(g, m, j, fx)
	case stateCompletingRebalance:
		if m.matches(j.protocols) {
			// A retry of a JoinGroup whose response was lost: answer with the
			// generation it already got.
			fx.join(j.w, joinSuccess(g, id, id == g.leader))
		} else {
			c.updateMemberAndRebalance(g, m, j, fx)
		}
	case stateStable:
		if id == g.leader || !m.matches(j.protocols) {
			// The leader rejoining forces a rebalance: that is how a consumer
			// asks for one when topic metadata changed.
			c.updateMemberAndRebalance(g, m, j, fx)
		} else {
			fx.join(j.w, joinSuccess(g, id, false))
		}
	default:
		fx.join(j.w, joinError(id, kerr.UnknownMemberID.Code))
	}
}

func (c *Coordinator) addMemberAndRebalance(g *group, id string, j joinArgs, fx *effects) {
	req := j.req
	m := &member{
		id:                 id,
		instanceID:         cloneStr(req.InstanceID),
		clientID:           j.cl.ID,
		clientHost:         j.cl.Host,
		rebalanceTimeoutMs: j.rebalanceMs,
		sessionTimeoutMs:   req.SessionTimeoutMillis,
		protocolType:       req.ProtocolType,
		protocols:          j.protocols,
		isNew:              true,
	}
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.add(m, j.w)
	c.scheduleSession(g, m, newMemberJoinTimeout)
	c.maybePrepareRebalance(g, fx, "adding new member "+id)
}

func (c *Coordinator) updateMemberAndRebalance(g *group, m *member, j joinArgs, fx *effects) {
	c.supersedeJoin(m, fx)
	g.updateMember(m, j.protocols, j.rebalanceMs, j.req.SessionTimeoutMillis, j.w)
	c.maybePrepareRebalance(g, fx, "member "+m.id+" rejoining")
}

// supersedeJoin answers a JoinGroup that a newer one from the same member
// replaces. Kafka drops the old callback, leaving that request unanswered;
// answering REBALANCE_IN_PROGRESS (retriable) keeps the one-answer contract.
func (c *Coordinator) supersedeJoin(m *member, fx *effects) {
	if m.join != nil {
		fx.join(m.join, joinError(m.id, kerr.RebalanceInProgress.Code))
	}
}

func cloneStr(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}

// newUUID is java.util.UUID.randomUUID().toString(): the suffix Kafka puts
// on member ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (Go 1.24+ panics instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
