// CreateTopics (key 19), versions 0-7.
//
// Creates each topic synchronously (metadata persisted, every partition's log
// created) before answering, so the timeout has nothing to wait for.
// NumPartitions / ReplicationFactor of -1 (v4+) take num.partitions /
// default.replication.factor. An explicit replica assignment (with both at
// -1, else INVALID_REQUEST) must list partitions 0..n-1 once each; in a
// cluster the controller checks it as Kafka's does (ctrl.ValidateAssignment:
// registered brokers, none twice, equal lengths, not all fenced, else
// INVALID_REPLICA_ASSIGNMENT), the first replica being the preferred leader;
// standalone it must place every partition on this broker alone. Configs
// are validated against the topic configs sluice implements (others are
// INVALID_CONFIG). v5+ answers carry the effective configs. A name given
// twice in one request fails both with INVALID_REQUEST, as in Kafka.
package node

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 19, min: 0, max: 7, handle: handleCreateTopics})
}

func handleCreateTopics(n *Node, c *call) {
	req := c.kreq.(*kmsg.CreateTopicsRequest)
	c.async(func() {
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		seen := map[string]int{}
		for _, rt := range req.Topics {
			seen[rt.Topic]++
		}
		for i := range req.Topics {
			rt := &req.Topics[i]
			out := kmsg.NewCreateTopicsResponseTopic()
			out.Topic = rt.Topic
			if seen[rt.Topic] > 1 {
				out.ErrorCode = kerr.InvalidRequest.Code
				out.ErrorMessage = errMsg(fmt.Errorf("topic %q appears more than once in the request", rt.Topic))
			} else {
				n.createTopicFromRequest(req, rt, &out)
			}
			resp.Topics = append(resp.Topics, out)
		}
		c.respond(resp)
	})
}

func (n *Node) createTopicFromRequest(req *kmsg.CreateTopicsRequest, rt *kmsg.CreateTopicsRequestTopic, out *kmsg.CreateTopicsResponseTopic) {
	parts, rf := rt.NumPartitions, rt.ReplicationFactor
	var assign [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if parts != -1 || rf != -1 {
			out.ErrorCode = kerr.InvalidRequest.Code
			out.ErrorMessage = errMsg(fmt.Errorf("both a replica assignment and partition count / replication factor given"))
			return
		}
		var err error
		if assign, err = n.checkAssignment(rt.ReplicaAssignment); err != nil {
			out.ErrorCode, out.ErrorMessage = kerr.InvalidReplicaAssignment.Code, errMsg(err)
			return
		}
		parts, rf = int32(len(assign)), int16(len(assign[0]))
	}
	if parts == -1 {
		parts = n.cfg.NumPartitions
	}
	if rf == -1 {
		rf = n.cfg.DefaultReplicationFactor
	}
	configs := map[string]string{}
	for _, kc := range rt.Configs {
		if err := checkTopicConfig(kc.Name, kc.Value); err != nil {
			out.ErrorCode, out.ErrorMessage = kerr.InvalidConfig.Code, errMsg(err)
			return
		}
		configs[kc.Name] = strings.TrimSpace(*kc.Value)
	}
	var t *topic
	var err error
	if assign != nil && n.cluster != nil {
		t, err = n.createTopicAssigned(rt.Topic, assign, configs, req.ValidateOnly)
	} else {
		t, err = n.createTopic(rt.Topic, parts, rf, configs, req.ValidateOnly)
	}
	if err != nil {
		out.ErrorCode, out.ErrorMessage = errCode(err), errMsg(err)
		if out.ErrorCode == kerr.UnknownServerError.Code || out.ErrorCode == kerr.KafkaStorageError.Code {
			n.log.Error("creating topic failed", "topic", rt.Topic, "err", err)
		}
		return
	}
	if t != nil {
		out.TopicID = t.id
		n.log.Info("created topic", "topic", rt.Topic, "partitions", parts, "configs", configs)
	}
	out.NumPartitions, out.ReplicationFactor = parts, rf
	for i := range topicConfigs {
		d := &topicConfigs[i]
		v, override := n.cfg.topicConfigValue(d, configs)
		kc := kmsg.NewCreateTopicsResponseTopicConfig()
		kc.Name, kc.Value = d.name, &v
		kc.Source = int8(kmsg.ConfigSourceDefaultConfig)
		if override {
			kc.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
		}
		out.Configs = append(out.Configs, kc)
	}
}

// checkAssignment turns an explicit assignment into replica lists indexed
// by partition; it must name partitions 0..n-1, each once. Standalone,
// every partition must be on exactly this broker; in a cluster the
// controller validates the replicas.
func (n *Node) checkAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) ([][]int32, error) {
	out := make([][]int32, len(as))
	for _, a := range as {
		if a.Partition < 0 || int(a.Partition) >= len(as) || out[a.Partition] != nil {
			return nil, fmt.Errorf("partitions must be 0..%d, each once; got partition %d", len(as)-1, a.Partition)
		}
		if n.cluster == nil && (len(a.Replicas) != 1 || a.Replicas[0] != n.cfg.NodeID) {
			return nil, fmt.Errorf("partition %d: replicas %v; this standalone broker can only place partitions on itself (broker %d)",
				a.Partition, a.Replicas, n.cfg.NodeID)
		}
		out[a.Partition] = append([]int32{}, a.Replicas...) // non-nil even when empty: marks the partition seen
	}
	return out, nil
}
