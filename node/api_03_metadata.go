// Metadata (key 3), versions 0-12.
//
// Lists this broker as the only broker and the controller, and every
// requested topic with its partitions (this broker leads them all; the ISR is
// itself). A null topic list (v1+; empty list at v0) means all topics.
// Unknown topics are created when the request allows it (v4+ field; always
// for v0-3) and auto.create.topics.enable is on; creation finishes before the
// answer, so the topic is returned ready rather than LEADER_NOT_AVAILABLE.
// Topics may be named by id (v10+). Authorized operations are not computed
// (no ACLs): the field keeps its "not requested" value.
package node

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

func init() {
	registerAPI(&apiDef{key: 3, min: 0, max: 12, handle: handleMetadata})
}

func handleMetadata(n *Node, c *call) {
	req := c.kreq.(*kmsg.MetadataRequest)
	autoCreate := n.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	if autoCreate && n.hasUnknownTopics(req) {
		c.async(func() { c.respond(n.metadata(req, true)) })
		return
	}
	c.respond(n.metadata(req, false))
}

func (n *Node) hasUnknownTopics(req *kmsg.MetadataRequest) bool {
	for _, rt := range req.Topics {
		if rt.Topic != nil && n.reg.get(*rt.Topic) == nil {
			return true
		}
	}
	return false
}

func (n *Node) metadata(req *kmsg.MetadataRequest, create bool) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, cb := range n.brokers() {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = cb.id, cb.host, cb.port, cb.rack
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterID = &n.clusterID
	// Every broker forwards admin requests to the active controller, so
	// clients may send them here (as KRaft brokers answer).
	resp.ControllerID = n.cfg.NodeID

	all := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	if all {
		for _, t := range n.reg.list() {
			resp.Topics = append(resp.Topics, n.topicMetadata(t))
		}
		return resp
	}
	for _, rt := range req.Topics {
		var t *topic
		var err error
		switch {
		case rt.Topic != nil:
			t = n.reg.get(*rt.Topic)
			if t == nil && create {
				t, err = n.autoCreate(*rt.Topic)
			}
			if t == nil && err == nil {
				err = errUnknownTopic
				if verr := segstore.ValidateTopic(*rt.Topic); verr != nil {
					err = fmt.Errorf("%w: %w", errInvalidTopic, verr)
				}
			}
		default:
			if t = n.reg.getByID(rt.TopicID); t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID, mt.ErrorCode = rt.TopicID, kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.ErrorCode = rt.Topic, errCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, n.topicMetadata(t))
	}
	return resp
}

// autoCreate creates a topic with the broker defaults; a concurrent creator
// winning the race is fine.
func (n *Node) autoCreate(name string) (*topic, error) {
	t, err := n.createTopic(name, n.cfg.NumPartitions, n.cfg.DefaultReplicationFactor, nil, false)
	if errors.Is(err, errTopicExists) {
		return n.reg.get(name), nil
	}
	if err != nil {
		if !errors.Is(err, errInvalidTopic) {
			n.log.Error("auto-creating topic failed", "topic", name, "err", err)
		}
		return nil, err
	}
	n.log.Info("auto-created topic", "topic", name, "partitions", n.cfg.NumPartitions)
	return t, nil
}

func (n *Node) topicMetadata(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic, mt.TopicID = &name, t.id
	mt.IsInternal = name == "__consumer_offsets" || name == "__transaction_state"
	for _, p := range n.reg.partitions(t) {
		st := p.state()
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader, mp.LeaderEpoch = p.index, st.Leader, st.LeaderEpoch
		mp.Replicas, mp.ISR, mp.OfflineReplicas = st.Replicas, st.ISR, st.Offline
		if st.Leader < 0 || n.cluster == nil && p.getLog() == nil {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
