// FindCoordinator (key 10), versions 0-6.
//
// Group keys map to partition PartitionFor(group) of __consumer_offsets; the
// coordinator is that partition's leader — this broker. The first request
// for a group creates the topic (Kafka creates it the same way, on first
// use) and loads it before answering, so the first answer already names a
// coordinator instead of COORDINATOR_NOT_AVAILABLE. v4+ batches keys.
// Deviations: transaction keys answer TRANSACTIONAL_ID_AUTHORIZATION_FAILED
// with a message (sluice has no transaction coordinator; the code fails a
// transactional client at once rather than letting it retry forever); share
// group keys (type 2) answer INVALID_REQUEST.
package node

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 10, min: 0, max: 6, handle: handleFindCoordinator})
}

const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

func handleFindCoordinator(n *Node, c *call) {
	req := c.kreq.(*kmsg.FindCoordinatorRequest)
	if req.CoordinatorType == coordinatorGroup && !n.groups.ready.Load() {
		// Creating or loading the offsets topic does disk I/O.
		c.async(func() {
			n.groups.ensure()
			c.respond(n.findCoordinator(req))
		})
		return
	}
	c.respond(n.findCoordinator(req))
}

func (n *Node) findCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		co := kmsg.NewFindCoordinatorResponseCoordinator()
		co.Key, co.NodeID, co.Port = key, -1, -1
		code, msg := n.coordinatorFor(req.CoordinatorType, key)
		if code == 0 && n.cluster != nil {
			co.NodeID, co.Host, co.Port, code, msg = n.clusterCoordinator(key)
		}
		switch {
		case code != 0:
			co.NodeID, co.Host, co.Port = -1, "", -1
			co.ErrorCode, co.ErrorMessage = code, msg
		case n.cluster == nil:
			co.Host, co.Port = n.advertised()
			co.NodeID = n.cfg.NodeID
		}
		resp.Coordinators = append(resp.Coordinators, co)
	}
	if req.Version < 4 {
		co := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = co.ErrorCode, co.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = co.NodeID, co.Host, co.Port
	}
	return resp
}

// coordinatorFor answers 0 when this broker coordinates key.
func (n *Node) coordinatorFor(typ int8, key string) (int16, *string) {
	switch typ {
	case coordinatorGroup:
	case coordinatorTransaction:
		msg := "transactions are not supported by this broker"
		return kerr.TransactionalIDAuthorizationFailed.Code, &msg
	default:
		msg := "unsupported coordinator type"
		return kerr.InvalidRequest.Code, &msg
	}
	if !n.groups.ready.Load() {
		msg := "the offsets topic is not available"
		if err := n.groups.loadErr(); err != nil {
			msg += ": " + err.Error()
		}
		return kerr.CoordinatorNotAvailable.Code, &msg
	}
	if n.cluster == nil && !n.groups.coord.Owns(n.groups.partitionOf(key)) {
		return kerr.CoordinatorNotAvailable.Code, nil
	}
	return 0, nil
}
