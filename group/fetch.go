package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchedPartition is one answer of GroupMetadataManager.getOffsets.
type fetchedPartition struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    string
	code        int16
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

type fetchTopicReq struct {
	topic      string
	partitions []int32
}

// handleFetch serves OffsetFetch v0-v9. Before v8 one group and one
// error (per partition before v2, top level from v2); from v8 a list of
// groups with an error each. Topics nil (v2+) means every committed offset.
// Missing offsets, and every offset of an unknown group, are -1 with no
// error, as in Kafka. MemberID/MemberEpoch (v9) only matter to KIP-848
// groups and are ignored here, as Kafka does for classic groups.
func (c *Coordinator) handleFetch(req *kmsg.OffsetFetchRequest, respond func(kmsg.Response)) {
	r := &kmsg.OffsetFetchResponse{Version: req.Version}
	r.Default()
	if req.Version >= 8 {
		r.Groups = make([]kmsg.OffsetFetchResponseGroup, 0, len(req.Groups))
		for _, rg := range req.Groups {
			var want []fetchTopicReq
			if rg.Topics != nil {
				want = make([]fetchTopicReq, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					want = append(want, fetchTopicReq{t.Topic, t.Partitions})
				}
			}
			code, topics := c.fetchOffsets(rg.Group, want, rg.Topics == nil, req.RequireStable)
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			sg.ErrorCode = code
			for _, t := range topics {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = t.topic
				for _, p := range t.partitions {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.ErrorCode = p.partition, p.offset, p.leaderEpoch, p.code
					md := p.metadata
					sp.Metadata = &md
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			r.Groups = append(r.Groups, sg)
		}
		respond(r)
		return
	}

	var want []fetchTopicReq
	all := req.Topics == nil && req.Version >= 2
	if !all {
		want = make([]fetchTopicReq, 0, len(req.Topics))
		for _, t := range req.Topics {
			want = append(want, fetchTopicReq{t.Topic, t.Partitions})
		}
	}
	code, topics := c.fetchOffsets(req.Group, want, all, req.RequireStable)
	if code != 0 {
		if req.Version >= 2 {
			r.ErrorCode = code
			respond(r)
			return
		}
		// v0-v1 have no top-level error: every partition carries it.
		topics = topics[:0]
		for _, t := range want {
			ft := fetchedTopic{topic: t.topic}
			for _, p := range t.partitions {
				ft.partitions = append(ft.partitions, fetchedPartition{partition: p, offset: -1, leaderEpoch: -1, code: code})
			}
			topics = append(topics, ft)
		}
	}
	for _, t := range topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.topic
		for _, p := range t.partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.ErrorCode = p.partition, p.offset, p.leaderEpoch, p.code
			md := p.metadata
			sp.Metadata = &md
			st.Partitions = append(st.Partitions, sp)
		}
		r.Topics = append(r.Topics, st)
	}
	respond(r)
}

// fetchOffsets is handleFetchOffsets + getOffsets for one group. With
// requireStable, a partition whose commit is still being written answers
// UNSTABLE_OFFSET_COMMIT (the client retries) rather than a stale offset.
func (c *Coordinator) fetchOffsets(groupID string, want []fetchTopicReq, all, requireStable bool) (int16, []fetchedTopic) {
	g, code := c.lockGroup(groupID, false)
	if code != 0 {
		return code, nil
	}
	var offsets map[tp]*offsetEntry
	if g != nil {
		defer g.mu.Unlock()
		offsets = g.offsets
	}
	if all {
		byTopic := map[string][]fetchedPartition{}
		for k, e := range offsets {
			if !e.committed {
				continue
			}
			byTopic[k.topic] = append(byTopic[k.topic], answerOffset(k.partition, e, requireStable))
		}
		out := make([]fetchedTopic, 0, len(byTopic))
		for t, ps := range byTopic {
			slices.SortFunc(ps, func(a, b fetchedPartition) int { return int(a.partition) - int(b.partition) })
			out = append(out, fetchedTopic{t, ps})
		}
		slices.SortFunc(out, func(a, b fetchedTopic) int { return strings.Compare(a.topic, b.topic) })
		return 0, out
	}
	out := make([]fetchedTopic, 0, len(want))
	for _, t := range want {
		ft := fetchedTopic{topic: t.topic, partitions: make([]fetchedPartition, 0, len(t.partitions))}
		for _, p := range t.partitions {
			ft.partitions = append(ft.partitions, answerOffset(p, offsets[tp{t.topic, p}], requireStable))
		}
		out = append(out, ft)
	}
	return 0, out
}

func answerOffset(partition int32, e *offsetEntry, requireStable bool) fetchedPartition {
	switch {
	case e != nil && requireStable && e.pending > 0:
		return fetchedPartition{partition: partition, offset: -1, leaderEpoch: -1, code: kerr.UnstableOffsetCommit.Code}
	case e == nil || !e.committed:
		return fetchedPartition{partition: partition, offset: -1, leaderEpoch: -1}
	}
	return fetchedPartition{partition: partition, offset: e.offset, leaderEpoch: e.leaderEpoch, metadata: e.metadata}
}
