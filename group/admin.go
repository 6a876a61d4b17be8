package group

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupAuthorizedOperations is what Kafka reports without an authorizer:
// every operation a group supports (READ=3, DELETE=6, DESCRIBE=8) as a bit
// field.
const groupAuthorizedOperations = 1<<3 | 1<<6 | 1<<8

// handleDescribe serves DescribeGroups v0-v5. An unknown group is "Dead"
// with no error (v6+ would say GROUP_ID_NOT_FOUND). Protocol, member
// metadata and assignments are only shown when Stable, as Kafka's summary.
func (c *Coordinator) handleDescribe(req *kmsg.DescribeGroupsRequest, respond func(kmsg.Response)) {
	r := &kmsg.DescribeGroupsResponse{Version: req.Version}
	r.Default()
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		g, code := c.lockGroup(id, false)
		switch {
		case code != 0:
			dg.ErrorCode = code
		case g == nil:
			dg.State = stateDead.String()
		default:
			describe(g, &dg)
			g.mu.Unlock()
		}
		if code == 0 && req.IncludeAuthorizedOperations && req.Version >= 3 {
			dg.AuthorizedOperations = groupAuthorizedOperations
		}
		r.Groups = append(r.Groups, dg)
	}
	respond(r)
}

func describe(g *group, dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State = g.state.String()
	dg.ProtocolType = g.protocolType
	stable := g.state == stateStable && g.protocol != nil
	if stable {
		dg.Protocol = *g.protocol
	}
	dg.Members = make([]kmsg.DescribeGroupsResponseGroupMember, 0, len(g.members))
	for _, m := range g.members {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable {
			if md := m.metadata(*g.protocol); md != nil {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		dg.Members = append(dg.Members, dm)
	}
}

// handleList serves ListGroups v0-v5. The states filter (v4+) and types
// filter (v5+) are case-insensitive; every group here is "classic". While a
// partition loads, the groups known so far come with
// COORDINATOR_LOAD_IN_PROGRESS, as Kafka answers.
func (c *Coordinator) handleList(req *kmsg.ListGroupsRequest, respond func(kmsg.Response)) {
	r := &kmsg.ListGroupsResponse{Version: req.Version}
	r.Default()
	r.Groups = []kmsg.ListGroupsResponseGroup{}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		r.ErrorCode = kerr.CoordinatorNotAvailable.Code
		respond(r)
		return
	}
	if slices.Contains(c.parts, partLoading) {
		r.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	c.mu.Unlock()

	var states []string
	for _, s := range req.StatesFilter {
		states = append(states, strings.ToLower(s))
	}
	classic := len(req.TypesFilter) == 0
	for _, t := range req.TypesFilter {
		classic = classic || strings.EqualFold(t, "classic")
	}
	if classic {
		for _, g := range c.snapshotGroups() {
			g.mu.Lock()
			if !g.dead && (len(states) == 0 || slices.Contains(states, strings.ToLower(g.state.String()))) {
				lg := kmsg.NewListGroupsResponseGroup()
				lg.Group = g.id
				lg.ProtocolType = g.protocolType
				lg.GroupState = g.state.String()
				lg.GroupType = "classic"
				r.Groups = append(r.Groups, lg)
			}
			g.mu.Unlock()
		}
	}
	slices.SortFunc(r.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	respond(r)
}

// removeOffsets drops the given offsets (and cancels their pending commits)
// and returns their tombstones. g.mu held.
func removeOffsets(g *group, tps []tp) []Record {
	var recs []Record
	for _, k := range tps {
		e := g.offsets[k]
		if e == nil {
			continue
		}
		// A tombstone also for a commit still in flight: it lands after that
		// commit in the log, so a reload agrees with memory.
		recs = append(recs, Record{Key: offsetKey(nil, g.id, k)})
		g.seq++
		e.committed, e.seq = false, g.seq
		if e.pending <= 0 {
			delete(g.offsets, k)
		}
	}
	return recs
}

// buryIfEmpty is the end of Kafka's cleanupGroupMetadata: an Empty group
// without offsets is dead, and its metadata gets a tombstone unless it never
// had a generation (then it only ever stored offsets). g.mu held.
//
// Unlike Kafka, a group with a member id handed out (MEMBER_ID_REQUIRED) is
// spared, so that member's rejoin does not race the cleanup.
func (c *Coordinator) buryIfEmpty(g *group, recs []Record) []Record {
	if g.state != stateEmpty || g.hasOffsets() || len(g.pending) > 0 {
		return recs
	}
	c.lg.Info("group transitioned to Dead", "group", g.id, "generation", g.generation)
	if g.generation > 0 {
		recs = append(recs, Record{Key: groupKey(g.id)})
	}
	c.markDead(g)
	return recs
}

// handleDeleteGroups serves DeleteGroups v0-v2: only Empty groups can go;
// their offsets and metadata get tombstones, and each group is answered once
// those are durable.
func (c *Coordinator) handleDeleteGroups(req *kmsg.DeleteGroupsRequest, respond func(kmsg.Response)) {
	r := &kmsg.DeleteGroupsResponse{Version: req.Version}
	r.Default()
	r.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	var remaining atomic.Int32
	remaining.Store(1)
	finish := func() {
		if remaining.Add(-1) == 0 {
			respond(r)
		}
	}
	for i, id := range req.Groups {
		dg := &r.Groups[i]
		dg.Default()
		dg.Group = id
		g, code := c.lockGroup(id, false)
		switch {
		case code != 0:
			dg.ErrorCode = code
			continue
		case g == nil:
			dg.ErrorCode = kerr.GroupIDNotFound.Code
			continue
		}
		if g.state != stateEmpty {
			dg.ErrorCode = kerr.NonEmptyGroup.Code
			g.mu.Unlock()
			continue
		}
		tps := make([]tp, 0, len(g.offsets))
		for k := range g.offsets {
			tps = append(tps, k)
		}
		recs := removeOffsets(g, tps)
		clear(g.offsets) // pending commits of a deleted group are not applied
		if g.generation > 0 {
			recs = append(recs, Record{Key: groupKey(id)})
		}
		c.lg.Info("deleting group", "group", id, "generation", g.generation, "offsets", len(tps))
		c.markDead(g)
		if len(recs) > 0 {
			remaining.Add(1)
			c.aq.push(g.part, recs, func(err error) {
				if err != nil {
					dg.ErrorCode = appendErrorCode(err, false)
				}
				finish()
			})
		}
		g.mu.Unlock()
		c.aq.drain(c.log)
	}
	finish()
}

// handleOffsetDelete serves OffsetDelete v0 (GroupCoordinator.handleDeleteOffsets).
func (c *Coordinator) handleOffsetDelete(req *kmsg.OffsetDeleteRequest, respond func(kmsg.Response)) {
	r := &kmsg.OffsetDeleteResponse{Version: req.Version}
	r.Default()
	fail := func(code int16) {
		r.ErrorCode, r.Topics = code, nil
		respond(r)
	}
	if req.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	g, code := c.lockGroup(req.Group, false)
	switch {
	case code != 0:
		fail(code)
		return
	case g == nil:
		fail(kerr.GroupIDNotFound.Code)
		return
	}
	consumer := g.protocolType == consumerProtocolType
	if g.state != stateEmpty && !consumer {
		g.mu.Unlock()
		fail(kerr.NonEmptyGroup.Code)
		return
	}
	var eligible []tp
	for _, t := range req.Topics {
		rt := kmsg.OffsetDeleteResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.OffsetDeleteResponseTopicPartition{Partition: p.Partition}
			switch {
			case !c.topicExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case g.state != stateEmpty && g.isSubscribedTo(t.Topic):
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				eligible = append(eligible, tp{t.Topic, p.Partition})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	recs := removeOffsets(g, eligible)
	if len(eligible) > 0 {
		recs = c.buryIfEmpty(g, recs)
	}
	if len(recs) == 0 {
		g.mu.Unlock()
		respond(r)
		return
	}
	c.aq.push(g.part, recs, func(err error) {
		if err != nil {
			fail(appendErrorCode(err, false))
			return
		}
		respond(r)
	})
	g.mu.Unlock()
	c.aq.drain(c.log)
}
