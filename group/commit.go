package group

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// codePending marks response partitions whose code the append decides.
const codePending = math.MinInt16

// handleCommit serves OffsetCommit v0-v9 (KafkaApis.handleOffsetCommitRequest
// and GroupCoordinator.handleCommitOffsets). Partitions of unknown topics get
// UNKNOWN_TOPIC_OR_PARTITION whatever else happens; the others share the
// group's verdict. Offsets are answered, and become visible, once durable.
// Duplicate partitions in one request are each answered; the last one wins.
func (c *Coordinator) handleCommit(req *kmsg.OffsetCommitRequest, respond func(kmsg.Response)) {
	r := &kmsg.OffsetCommitResponse{Version: req.Version}
	r.Default()
	r.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	valid := 0
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &r.Topics[i]
		rt.Default()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		for j := range t.Partitions {
			rp := &rt.Partitions[j]
			rp.Default()
			rp.Partition = t.Partitions[j].Partition
			if c.topicExists(t.Topic, rp.Partition) {
				rp.ErrorCode = codePending
				valid++
			} else {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
		}
	}
	if valid == 0 { // KafkaApis does not even ask the coordinator
		respond(r)
		return
	}

	// generation -1 and no member: a commit outside group management
	// (assign() consumers, admin tools), allowed while the group is Empty.
	standalone := req.Generation < 0 && req.MemberID == "" && req.InstanceID == nil
	g, code := c.lockGroup(req.Group, standalone)
	if code == 0 && g == nil {
		code = kerr.UnknownMemberID.Code
		if req.Generation >= 0 {
			code = kerr.IllegalGeneration.Code // a member of a group we no longer know
		}
	}
	if code != 0 {
		settle(r, code)
		respond(r)
		return
	}
	code = validateCommit(g, req)
	if code == 0 {
		switch g.state {
		case stateCompletingRebalance:
			// The member has its new generation but no assignment yet.
			code = kerr.RebalanceInProgress.Code
		case stateStable, statePreparingRebalance:
			// Cooperative consumers commit while revoking; the heartbeat
			// answer tells them about the rebalance.
			if m := g.byID[req.MemberID]; m != nil {
				c.heartbeat(g, m)
			}
		}
	}
	if code != 0 {
		c.dropIfVacuous(g)
		g.mu.Unlock()
		settle(r, code)
		respond(r)
		return
	}
	queued := c.storeOffsets(g, req, r, respond)
	c.dropIfVacuous(g)
	g.mu.Unlock()
	if !queued {
		respond(r)
		return
	}
	c.aq.drain(c.log)
}

// validateCommit is GroupCoordinator.validateOffsetCommit.
func validateCommit(g *group, req *kmsg.OffsetCommitRequest) int16 {
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if req.InstanceID != nil {
			cur, ok := g.static[*req.InstanceID]
			if !ok {
				return kerr.UnknownMemberID.Code
			}
			if cur != req.MemberID {
				return kerr.FencedInstanceID.Code
			}
		}
		if !g.has(req.MemberID) {
			return kerr.UnknownMemberID.Code
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		return 0
	}
	if g.state != stateEmpty {
		return kerr.UnknownMemberID.Code // only members commit to a live group
	}
	return 0
}

// settle sets every undecided partition to code.
func settle(r *kmsg.OffsetCommitResponse, code int16) {
	for i := range r.Topics {
		ps := r.Topics[i].Partitions
		for j := range ps {
			if ps[j].ErrorCode == codePending {
				ps[j].ErrorCode = code
			}
		}
	}
}

type commitItem struct {
	t tp
	v offsetEntry
}

// storeOffsets is GroupMetadataManager.storeOffsets: it queues one batch with
// every partition whose metadata fits and reports whether it did; the
// response goes out from the append's completion. g.mu held.
func (c *Coordinator) storeOffsets(g *group, req *kmsg.OffsetCommitRequest, r *kmsg.OffsetCommitResponse, respond func(kmsg.Response)) bool {
	now := c.nowMs()
	expireMs := int64(-1)
	if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis != -1 {
		expireMs = now + req.RetentionTimeMillis
	}
	n, size := 0, 0
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &r.Topics[i].Partitions[j]
			if rp.ErrorCode != codePending {
				continue
			}
			if p.Metadata != nil && javaLength(*p.Metadata) > c.cfg.MaxMetadataSize {
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			n++
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			size += offsetKeySize(req.Group, tp{t.Topic, p.Partition}) + offsetValueSize(md)
		}
	}
	if n == 0 {
		return false
	}
	buf := make([]byte, 0, size)
	recs := make([]Record, 0, n)
	items := make([]commitItem, 0, n)
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if r.Topics[i].Partitions[j].ErrorCode != codePending {
				continue
			}
			v := offsetEntry{committed: true, offset: p.Offset, leaderEpoch: p.LeaderEpoch, commitMs: now, expireMs: expireMs}
			if req.Version < 6 {
				v.leaderEpoch = -1
			}
			if p.Metadata != nil {
				v.metadata = *p.Metadata
			}
			if req.Version == 1 && p.Timestamp != -1 {
				v.commitMs = p.Timestamp // v1 lets the client set the commit time
			}
			k := tp{t.Topic, p.Partition}
			g.seq++
			v.seq = g.seq
			e := g.offsets[k]
			if e == nil {
				e = &offsetEntry{}
				g.offsets[k] = e
			}
			e.pending++
			start := len(buf)
			buf = offsetKey(buf, req.Group, k)
			key := buf[start:len(buf):len(buf)]
			start = len(buf)
			buf = offsetValue(buf, &v)
			recs = append(recs, Record{Key: key, Value: buf[start:len(buf):len(buf)]})
			items = append(items, commitItem{k, v})
		}
	}
	c.aq.push(g.part, recs, func(err error) {
		var code int16
		if err != nil {
			code = appendErrorCode(err, true)
		}
		c.commitDone(g, items, err == nil)
		settle(r, code)
		respond(r)
	})
	return true
}

// commitDone is onOffsetCommitAppend / failPendingOffsetWrite: a durable
// value replaces the current one unless a later record (commit or
// tombstone) already did.
func (c *Coordinator) commitDone(g *group, items []commitItem, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range items {
		it := &items[i]
		e := g.offsets[it.t]
		if e == nil { // the group's offsets were dropped meanwhile
			continue
		}
		e.pending--
		if ok && !g.dead && it.v.seq > e.seq {
			pending := e.pending
			*e = it.v
			e.pending = pending
		}
		if !e.committed && e.pending <= 0 {
			delete(g.offsets, it.t)
		}
	}
	if !ok {
		c.dropIfVacuous(g)
	}
}
