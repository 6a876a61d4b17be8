// DeleteTopics (key 20), versions 0-6.
//
// Removes the topic from the metadata (persisted first), then deletes its
// partitions' logs; fetches parked on it answer at once. Topics are named by
// name (all versions) or id (v6+). delete.topic.enable=false answers
// TOPIC_DELETION_DISABLED. The internal __consumer_offsets cannot be deleted
// (every group's offsets would go, under a coordinator still serving them):
// INVALID_TOPIC_EXCEPTION with a message.
package node

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 20, min: 0, max: 6, handle: handleDeleteTopics})
}

func handleDeleteTopics(n *Node, c *call) {
	req := c.kreq.(*kmsg.DeleteTopicsRequest)
	targets := req.Topics
	for _, name := range req.TopicNames {
		name := name
		targets = append(targets, kmsg.DeleteTopicsRequestTopic{Topic: &name})
	}
	c.async(func() {
		resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
		for _, rt := range targets {
			out := kmsg.NewDeleteTopicsResponseTopic()
			out.Topic, out.TopicID = rt.Topic, rt.TopicID
			var t *topic
			if rt.Topic != nil {
				t = n.reg.get(*rt.Topic)
			} else {
				t = n.reg.getByID(rt.TopicID)
			}
			switch {
			case !n.cfg.DeleteTopicEnable:
				out.ErrorCode = kerr.TopicDeletionDisabled.Code
			case t == nil && rt.Topic == nil:
				out.ErrorCode = kerr.UnknownTopicID.Code
			case t == nil:
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case t.name == offsetsTopic:
				msg := "the internal topic " + offsetsTopic + " cannot be deleted"
				out.ErrorCode, out.ErrorMessage = kerr.InvalidTopicException.Code, &msg
			default:
				name := t.name
				out.Topic, out.TopicID = &name, t.id
				if err := n.deleteTopic(name); err != nil {
					out.ErrorCode, out.ErrorMessage = errCode(err), errMsg(err)
					n.log.Error("deleting topic failed", "topic", name, "err", err)
				} else {
					n.log.Info("deleted topic", "topic", name)
				}
			}
			resp.Topics = append(resp.Topics, out)
		}
		c.respond(resp)
	})
}
