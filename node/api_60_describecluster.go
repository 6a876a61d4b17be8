// DescribeCluster (key 60), versions 0-1.
//
// Lists this broker as the cluster's only broker (its advertised host and
// port, and rack) and as the controller, with the cluster id from
// meta.properties. EndpointType (v1+) 1 asks for brokers; any other (2 is
// controllers, which only controllers serve) is UNSUPPORTED_ENDPOINT_TYPE,
// as a Kafka broker answers.
// ClusterAuthorizedOperations keeps its "not requested" value
// (-2147483648) unless requested; then it is every cluster operation, as
// Kafka answers without an authorizer (sluice has no ACLs).
//
// Deviations: v2 (IncludeFencedBrokers) is not served; with one broker no
// broker is ever fenced.
package node

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 60, min: 0, max: 1, handle: handleDescribeCluster})
}

// clusterOperations is the bit set of every operation on the CLUSTER
// resource (Kafka's AclEntry.supportedOperations(CLUSTER)).
var clusterOperations = func() int32 {
	var ops int32
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationAlter, kmsg.ACLOperationAlterConfigs,
		kmsg.ACLOperationClusterAction, kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationIdempotentWrite} {
		ops |= 1 << op
	}
	return ops
}()

func handleDescribeCluster(n *Node, c *call) {
	req := c.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.Version == 0 {
		resp.EndpointType = 1
	}
	if resp.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = errMsg(fmt.Errorf("endpoint type %d: this broker serves only endpoint type 1 (brokers)", req.EndpointType))
		c.respond(resp)
		return
	}
	for _, cb := range n.brokers() {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = cb.id, cb.host, cb.port, cb.rack
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterID = n.clusterID
	resp.ControllerID = n.cfg.NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	c.respond(resp)
}
