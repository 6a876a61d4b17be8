// DescribeConfigs (key 32), versions 0-4.
//
// TOPIC (2) resources list every topic config sluice implements (the table
// in topicconfig.go; other Kafka keys are not listed because setting them is
// refused): the topic's override with source DYNAMIC_TOPIC_CONFIG, else the
// broker-wide value with STATIC_BROKER_CONFIG when the broker's
// configuration sets it, else DEFAULT_CONFIG. Synonyms (v1+, when asked) are
// Kafka's: the override, then the broker property (log.retention.ms, ...)
// from the configuration, then its default. Topic configs are never
// read-only or sensitive. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; an
// invalid name: INVALID_TOPIC_EXCEPTION.
//
// BROKER (4) resources named with this broker's id list its effective
// configuration under Kafka's property names (and sluice's own:
// log.flush.policy, io.engine), read-only: STATIC_BROKER_CONFIG when the
// value differs from the default, else DEFAULT_CONFIG; in a cluster also the
// dynamic replication throttle rates (writable; DYNAMIC_BROKER_CONFIG or
// DYNAMIC_DEFAULT_BROKER_CONFIG when set). The empty name is Kafka's
// cluster-wide default resource, which lists the dynamic cluster defaults
// set (the throttle rates; nothing standalone). Another id, or a name that
// is not a number, is INVALID_REQUEST, as in Kafka.
//
// ConfigNames filters (null or empty: all). Documentation (v3+) is sent
// when IncludeDocumentation; ConfigType (v3+) always. Other resource types
// (BROKER_LOGGER, CLIENT_METRICS, GROUP) are INVALID_REQUEST.
//
// Deviations: a broker property whose configured value equals its default
// reads as DEFAULT_CONFIG (the configuration does not record where values
// came from); Kafka topic configs sluice does not implement (e.g.
// flush.messages, segment.jitter.ms) are absent rather than listed with
// defaults that would not take effect.
package node

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

func init() {
	registerAPI(&apiDef{key: 32, min: 0, max: 4, handle: handleDescribeConfigs})
}

func handleDescribeConfigs(n *Node, c *call) {
	req := c.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for i := range req.Resources {
		resp.Resources = append(resp.Resources, n.describeResource(req, &req.Resources[i]))
	}
	c.respond(resp)
}

func (n *Node) describeResource(req *kmsg.DescribeConfigsRequest, rr *kmsg.DescribeConfigsRequestResource) kmsg.DescribeConfigsResponseResource {
	out := kmsg.NewDescribeConfigsResponseResource()
	out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
	want := func(name string) bool {
		if len(rr.ConfigNames) == 0 {
			return true
		}
		for _, w := range rr.ConfigNames {
			if w == name {
				return true
			}
		}
		return false
	}
	synonyms := req.IncludeSynonyms && req.Version >= 1
	docs := req.IncludeDocumentation && req.Version >= 3
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		if err := segstore.ValidateTopic(rr.ResourceName); err != nil {
			out.ErrorCode, out.ErrorMessage = kerr.InvalidTopicException.Code, errMsg(err)
			return out
		}
		t := n.reg.get(rr.ResourceName)
		if t == nil {
			out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			return out
		}
		overrides := n.reg.configs(t)
		for i := range topicConfigs {
			if d := &topicConfigs[i]; want(d.name) {
				out.Configs = append(out.Configs, n.topicConfigEntry(d, overrides, synonyms, docs))
			}
		}
	case kmsg.ConfigResourceTypeBroker:
		if err := n.brokerResourceError(rr.ResourceName); err != nil {
			out.ErrorCode, out.ErrorMessage = kerr.InvalidRequest.Code, errMsg(err)
			return out
		}
		entries := n.brokerEntries()
		if rr.ResourceName == "" {
			entries = n.dynamicBrokerEntries("") // the cluster default: only dynamic defaults
		}
		for _, e := range entries {
			if want(e.name) {
				out.Configs = append(out.Configs, e.describe(synonyms, docs))
			}
		}
	default:
		out.ErrorCode, out.ErrorMessage = kerr.InvalidRequest.Code, errMsg(errUnsupportedResource(rr.ResourceType))
	}
	return out
}

// topicConfigEntry describes one topic config the way Kafka's
// ConfigHelper.createTopicConfigEntry does: the source is that of the first
// synonym (the override, the broker's configured value, the default).
func (n *Node) topicConfigEntry(d *configDef, overrides map[string]string, synonyms, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	defs := DefaultConfig()
	brokerVal, defVal := d.def(&n.cfg), d.def(&defs)
	var all []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	if v, ok := overrides[d.name]; ok {
		all = append(all, synonym(d.name, sp(v), kmsg.ConfigSourceDynamicTopicConfig))
	}
	if brokerVal != defVal {
		all = append(all, synonym(d.brokerName, sp(brokerVal), kmsg.ConfigSourceStaticBrokerConfig))
	}
	all = append(all, synonym(d.brokerName, sp(defVal), kmsg.ConfigSourceDefaultConfig))

	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	rc.Name, rc.Value, rc.Source = d.name, all[0].Value, all[0].Source
	rc.IsDefault = rc.Source == kmsg.ConfigSourceDefaultConfig
	rc.ConfigType = d.typ
	if synonyms {
		rc.ConfigSynonyms = all
	}
	if docs {
		rc.Documentation = sp(d.doc)
	}
	return rc
}

func (e *brokerEntry) describe(synonyms, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	rc.Name, rc.Value, rc.Source = e.name, e.value, e.source()
	rc.ReadOnly = !e.dynamicKey
	rc.IsDefault = rc.Source == kmsg.ConfigSourceDefaultConfig
	rc.ConfigType = e.typ
	if synonyms {
		rc.ConfigSynonyms = e.synonyms()
	}
	if docs {
		rc.Documentation = sp(e.doc)
	}
	return rc
}
