// AlterConfigs (key 33), versions 0-2.
//
// The legacy, non-incremental form: for a TOPIC (2) resource the given
// configs replace all of the topic's overrides (keys not given go back to
// the broker default). Every key must be a topic config sluice implements
// with a valid value, else the resource is INVALID_CONFIG and nothing
// changes; a key given twice is INVALID_REQUEST. The new overrides are
// persisted in the metadata and applied to the running logs (retention,
// segment size and roll, index interval, max message size, timestamp
// type) before the answer. ValidateOnly validates without applying. Unknown
// topic: UNKNOWN_TOPIC_OR_PARTITION; invalid name: INVALID_TOPIC_EXCEPTION.
//
// BROKER (4) resources: in a cluster the given configs replace the
// resource's dynamic broker configs, which may only be the replication
// throttle rates (replthrottle.go); an invalid value is INVALID_CONFIG.
// Other broker configs are read at start-up and cannot be changed at
// runtime: naming one is INVALID_REQUEST with a message saying so (what
// Kafka answers for a config that is not dynamically updatable), as is any
// change standalone; there an empty config list is a no-op success. The name must be empty or this
// broker's id (INVALID_REQUEST otherwise). Other resource types, and a
// resource named twice in one request, are INVALID_REQUEST.
//
// Runs off the event loop (the metadata file is written and synced).
package node

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 33, min: 0, max: 2, handle: handleAlterConfigs})
}

func handleAlterConfigs(n *Node, c *call) {
	req := c.kreq.(*kmsg.AlterConfigsRequest)
	c.async(func() {
		rs := make([]alterResource, len(req.Resources))
		for i := range req.Resources {
			rr := &req.Resources[i]
			rs[i] = alterResource{typ: rr.ResourceType, name: rr.ResourceName,
				change:       func(map[string]string) (map[string]string, int16, error) { return replacementConfigs(rr.Configs) },
				brokerChange: func(map[string]string) (map[string]string, int16, error) { return brokerReplacement(rr.Configs) }}
			for _, kc := range rr.Configs {
				rs[i].keys = append(rs[i].keys, kc.Name)
			}
		}
		resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
		for _, r := range n.alterResources(rs, req.ValidateOnly) {
			out := kmsg.NewAlterConfigsResponseResource()
			out.ResourceType, out.ResourceName = r.typ, r.name
			out.ErrorCode, out.ErrorMessage = r.code, r.msg
			resp.Resources = append(resp.Resources, out)
		}
		c.respond(resp)
	})
}

// replacementConfigs is the full override set an AlterConfigs resource
// asks for; values are validated by alterTopicConfigs.
func replacementConfigs(cs []kmsg.AlterConfigsRequestResourceConfig) (map[string]string, int16, error) {
	next := make(map[string]string, len(cs))
	for _, kc := range cs {
		if _, dup := next[kc.Name]; dup {
			return nil, kerr.InvalidRequest.Code, fmt.Errorf("config %q is given more than once", kc.Name)
		}
		if err := checkTopicConfig(kc.Name, kc.Value); err != nil {
			return nil, kerr.InvalidConfig.Code, err
		}
		next[kc.Name] = *kc.Value
	}
	return next, 0, nil
}
