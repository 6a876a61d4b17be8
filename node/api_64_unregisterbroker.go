// UnregisterBroker (key 64), version 0.
//
// The last step of decommissioning a broker (KIP-631): forwarded to the
// active controller, which removes the broker's registration for good once
// it is fenced (shut down) and no partition names it as a replica. Move
// its replicas away first with AlterPartitionReassignments. Errors:
// BROKER_ID_NOT_REGISTERED; INVALID_REQUEST while the broker still runs
// (unfenced) or still holds a replica, where Kafka would unregister it and
// leave those partitions with a replica that can never return. A
// standalone broker is the only one and is running: INVALID_REQUEST for
// itself, BROKER_ID_NOT_REGISTERED for any other id.
package node

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ctrl"
)

func init() {
	registerAPI(&apiDef{key: 64, min: 0, max: 0, handle: handleUnregisterBroker})
}

func handleUnregisterBroker(n *Node, c *call) {
	req := c.kreq.(*kmsg.UnregisterBrokerRequest)
	c.async(func() {
		resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
		var err error
		switch {
		case n.cluster != nil:
			ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
			err = n.cluster.client.UnregisterBroker(ctx, req.BrokerID)
			if err == nil { // the next request here must not list it
				_ = n.cluster.waitView(ctx, func(s *ctrl.State) bool { return s.Brokers[req.BrokerID] == nil })
			}
			cancel()
		case req.BrokerID == n.cfg.NodeID:
			err = fmt.Errorf("%w: broker %d is this standalone broker, which is running", kerr.InvalidRequest, req.BrokerID)
		default:
			err = fmt.Errorf("%w: broker %d", kerr.BrokerIDNotRegistered, req.BrokerID)
		}
		resp.ErrorCode, resp.ErrorMessage = forwardedErrCode(err), errMsg(err)
		c.respond(resp)
	})
}
