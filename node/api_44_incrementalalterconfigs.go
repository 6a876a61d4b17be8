// IncrementalAlterConfigs (key 44), versions 0-1.
//
// For a TOPIC (2) resource the operations apply in order to the topic's
// current overrides: SET (0) sets a key, DELETE (1) removes its override
// (back to the broker default), APPEND (2) and SUBTRACT (3) add or remove
// comma-separated items of a list-typed key (cleanup.policy), starting from
// its effective value when there is no override. The result must hold only
// topic configs sluice implements, with valid values; otherwise the
// resource is INVALID_CONFIG and nothing changes (APPEND or SUBTRACT on a
// key that is not a list is INVALID_CONFIG too, as in Kafka). A null value
// for SET/APPEND/SUBTRACT, an unknown operation, or a key named twice in
// one resource is INVALID_REQUEST. The new overrides are persisted and
// applied to the running logs before the answer; ValidateOnly validates
// without applying. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; invalid
// name: INVALID_TOPIC_EXCEPTION.
//
// BROKER (4) resources: in a cluster, SET and DELETE of the dynamic
// broker configs leader.replication.throttled.rate and
// follower.replication.throttled.rate (replthrottle.go) for this broker's
// id or "" (the cluster-wide default); an invalid value or APPEND/SUBTRACT
// is INVALID_CONFIG. Any other key, or any change standalone, is
// INVALID_REQUEST with a message saying so; an empty operation list is a
// no-op success; the name must be empty or this broker's id.
// BROKER_LOGGER and other types, and a resource named twice, are
// INVALID_REQUEST.
//
// Deviations: DELETE of a key sluice does not implement is INVALID_CONFIG
// (Kafka accepts it as a no-op), so a misspelt key is reported rather than
// silently ignored. Runs off the event loop (the metadata is written and
// synced).
package node

import (
	"fmt"
	"maps"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 44, min: 0, max: 1, handle: handleIncrementalAlterConfigs})
}

func handleIncrementalAlterConfigs(n *Node, c *call) {
	req := c.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	c.async(func() {
		rs := make([]alterResource, len(req.Resources))
		for i := range req.Resources {
			rr := &req.Resources[i]
			rs[i] = alterResource{typ: rr.ResourceType, name: rr.ResourceName,
				change: func(old map[string]string) (map[string]string, int16, error) {
					return n.applyConfigOps(old, rr.Configs)
				},
				brokerChange: func(old map[string]string) (map[string]string, int16, error) {
					return brokerConfigOps(old, rr.Configs)
				}}
			for _, kc := range rr.Configs {
				rs[i].keys = append(rs[i].keys, kc.Name)
			}
		}
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		for _, r := range n.alterResources(rs, req.ValidateOnly) {
			out := kmsg.NewIncrementalAlterConfigsResponseResource()
			out.ResourceType, out.ResourceName = r.typ, r.name
			out.ErrorCode, out.ErrorMessage = r.code, r.msg
			resp.Resources = append(resp.Resources, out)
		}
		c.respond(resp)
	})
}

// applyConfigOps returns a new override map: old (never modified) with ops
// applied in order. Values are validated afterwards by alterTopicConfigs.
func (n *Node) applyConfigOps(old map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, int16, error) {
	next := maps.Clone(old)
	if next == nil {
		next = map[string]string{}
	}
	named := map[string]bool{}
	for _, op := range ops {
		if named[op.Name] {
			return nil, kerr.InvalidRequest.Code, fmt.Errorf("config %q is given more than once", op.Name)
		}
		named[op.Name] = true
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete,
			kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		default:
			return nil, kerr.InvalidRequest.Code, fmt.Errorf("config %q: unknown operation %d", op.Name, op.Op)
		}
		d := findTopicConfig(op.Name)
		if d == nil {
			return nil, kerr.InvalidConfig.Code, fmt.Errorf("unknown or unsupported topic config %q", op.Name)
		}
		if op.Op == kmsg.IncrementalAlterConfigOpDelete {
			delete(next, op.Name)
			continue
		}
		if op.Value == nil {
			return nil, kerr.InvalidRequest.Code, fmt.Errorf("config %q: null value not supported for %s", op.Name, op.Op)
		}
		if op.Op == kmsg.IncrementalAlterConfigOpSet {
			next[op.Name] = *op.Value
			continue
		}
		if d.typ != kmsg.ConfigTypeList {
			return nil, kerr.InvalidConfig.Code, fmt.Errorf("config %q is not a list: %s is not allowed", op.Name, op.Op)
		}
		cur, _ := n.cfg.topicConfigValue(d, next)
		items := splitList(cur)
		if op.Op == kmsg.IncrementalAlterConfigOpAppend {
			for _, it := range splitList(*op.Value) {
				if !containsString(items, it) {
					items = append(items, it)
				}
			}
		} else {
			drop := splitList(*op.Value)
			kept := items[:0]
			for _, it := range items {
				if !containsString(drop, it) {
					kept = append(kept, it)
				}
			}
			items = kept
		}
		next[op.Name] = strings.Join(items, ",")
	}
	return next, 0, nil
}

// splitList splits a list config value at commas, trimming blanks and
// dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, it := range strings.Split(v, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
