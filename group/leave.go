package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleLeave serves LeaveGroup v0-v5 (GroupCoordinator.handleLeaveGroup).
// v0-v2 name one member; v3+ (KIP-345) a batch, each by member id and/or
// instance id, answered per member. Before v3 the single error is the
// top-level one, else the first member error (LeaveGroupResponse.getError).
func (c *Coordinator) handleLeave(req *kmsg.LeaveGroupRequest, respond func(kmsg.Response)) {
	var fx effects
	defer c.flush(&fx)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	top, results := c.leave(req.Group, leaving, &fx)

	r := &kmsg.LeaveGroupResponse{Version: req.Version}
	r.Default()
	r.ErrorCode = top
	if req.Version >= 3 {
		r.Members = results
	} else if top == 0 {
		for _, m := range results {
			if m.ErrorCode != 0 {
				r.ErrorCode = m.ErrorCode
				break
			}
		}
	}
	fx.reply(respond, r)
}

func (c *Coordinator) leave(groupID string, leaving []kmsg.LeaveGroupRequestMember, fx *effects) (int16, []kmsg.LeaveGroupResponseMember) {
	results := make([]kmsg.LeaveGroupResponseMember, 0, len(leaving))
	answer := func(l kmsg.LeaveGroupRequestMember, code int16) {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = l.MemberID
		rm.InstanceID = l.InstanceID
		rm.ErrorCode = code
		results = append(results, rm)
	}
	if groupID == "" {
		return kerr.InvalidGroupID.Code, results
	}
	g, code := c.lockGroup(groupID, false)
	if code != 0 {
		return code, results
	}
	if g == nil {
		for _, l := range leaving {
			answer(l, kerr.UnknownMemberID.Code)
		}
		return 0, results
	}
	defer g.mu.Unlock()
	for _, l := range leaving {
		reason := "not provided"
		if l.Reason != nil {
			reason = *l.Reason
		}
		switch {
		case l.MemberID == "":
			// Administrative removal by instance id (kafka-consumer-groups).
			var cur string
			if l.InstanceID != nil {
				cur = g.static[*l.InstanceID]
			}
			if m := g.byID[cur]; cur != "" && m != nil {
				c.lg.Info("member left the group", "group", g.id, "member", cur, "reason", reason)
				c.removeMemberAndUpdateGroup(g, m, fx)
				answer(l, 0)
			} else {
				answer(l, kerr.UnknownMemberID.Code)
			}
		case g.pending[l.MemberID] != nil:
			g.remove(l.MemberID)
			c.tryCompleteJoin(g, fx)
			answer(l, 0)
		default:
			if code := validateMember(g, l.MemberID, l.InstanceID); code != 0 {
				answer(l, code)
				continue
			}
			c.lg.Info("member left the group", "group", g.id, "member", l.MemberID, "reason", reason)
			c.removeMemberAndUpdateGroup(g, g.byID[l.MemberID], fx)
			answer(l, 0)
		}
	}
	c.dropIfVacuous(g)
	return 0, results
}
