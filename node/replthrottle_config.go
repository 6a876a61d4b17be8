package node

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ctrl"
)

// Dynamic broker configs: the only broker properties that may change at
// runtime are the replication throttle rates. In a cluster they are kept
// in the controller's metadata (ctrl.State.BrokerConfigs, by broker id, ""
// for the cluster-wide default) and every broker reads them from there.
// Standalone there is no replication, so they are refused.

// dynamicBrokerConfig is one broker property AlterConfigs may change.
type dynamicBrokerConfig struct {
	name  string
	doc   string
	check func(v string) error
}

var dynamicBrokerConfigs = []dynamicBrokerConfig{
	{name: leaderThrottledRate, check: checkThrottleRate,
		doc: "bytes/s a leader sends to non-ISR followers of the replicas in leader.replication.throttled.replicas"},
	{name: followerThrottledRate, check: checkThrottleRate,
		doc: "bytes/s a follower fetches for its non-ISR replicas in follower.replication.throttled.replicas"},
}

// unlimitedRate is the rates' default, Kafka's Long.MAX_VALUE.
var unlimitedRate = itoa(math.MaxInt64)

func findDynamicBrokerConfig(name string) *dynamicBrokerConfig {
	for i := range dynamicBrokerConfigs {
		if dynamicBrokerConfigs[i].name == name {
			return &dynamicBrokerConfigs[i]
		}
	}
	return nil
}

// alterBrokerConfigs answers a request to change the dynamic configs of
// broker resource name (this broker's id, or "" for the cluster default):
// change computes the new set from the current one. A key that is not a
// dynamic broker config is INVALID_REQUEST (it cannot be updated at
// runtime), as is any change standalone; an invalid value is
// INVALID_CONFIG. In a cluster the new set goes to the controller and the
// call returns once this broker's metadata shows it. Blocks on the
// network: not on an event loop.
func (n *Node) alterBrokerConfigs(name string, validateOnly bool, keys []string,
	change func(old map[string]string) (map[string]string, int16, error)) (int16, *string) {
	if err := n.brokerResourceError(name); err != nil {
		return kerr.InvalidRequest.Code, errMsg(err)
	}
	var static []string
	for _, k := range keys {
		if findDynamicBrokerConfig(k) == nil {
			static = append(static, k)
		}
	}
	if len(static) > 0 {
		return n.alterBrokerError(name, static)
	}
	c := n.cluster
	if c == nil || change == nil {
		if len(keys) == 0 {
			return 0, nil
		}
		return kerr.InvalidRequest.Code, errMsg(fmt.Errorf("cannot update %s: replication throttles "+
			"apply to cluster mode only (this broker is standalone)", strings.Join(keys, ", ")))
	}
	configAlterMu.Lock()
	defer configAlterMu.Unlock()
	s, _ := c.currentView()
	old := s.BrokerConfigs[name]
	next, code, err := change(maps.Clone(old))
	if err != nil {
		return code, errMsg(err)
	}
	for k, v := range next {
		if ov, ok := old[k]; ok && ov == v {
			continue // kept as it was (it may be a key set some other way)
		}
		d := findDynamicBrokerConfig(k)
		if d == nil {
			return kerr.InvalidRequest.Code, errMsg(fmt.Errorf("cannot update config %q dynamically", k))
		}
		if err := d.check(strings.TrimSpace(v)); err != nil {
			return kerr.InvalidConfig.Code, errMsg(fmt.Errorf("config %s=%q: %w", k, v, err))
		}
	}
	if validateOnly {
		return 0, nil
	}
	want := trimConfigs(next)
	if want == nil {
		want = map[string]string{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := c.client.SetConfigs(ctx, ctrl.ConfigResourceBroker, name, want); err != nil {
		return errCode(err), errMsg(err)
	}
	err = c.waitView(ctx, func(s *ctrl.State) bool {
		got := s.BrokerConfigs[name]
		return len(got) == len(want) && maps.Equal(got, want)
	})
	if err != nil {
		return errCode(err), errMsg(err)
	}
	n.log.Info("altered broker configs", "broker", name, "configs", want)
	return 0, nil
}

// brokerConfigOps applies IncrementalAlterConfigs operations to a broker
// resource's dynamic configs (old may be modified). SET and DELETE only:
// the rates are not lists (APPEND/SUBTRACT: INVALID_CONFIG). Values are
// checked by alterBrokerConfigs.
func brokerConfigOps(old map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, int16, error) {
	next := old
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
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, op.Name)
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, kerr.InvalidRequest.Code, fmt.Errorf("config %q: null value not supported for SET", op.Name)
			}
			next[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			return nil, kerr.InvalidConfig.Code, fmt.Errorf("config %q is not a list: %s is not allowed", op.Name, op.Op)
		default:
			return nil, kerr.InvalidRequest.Code, fmt.Errorf("config %q: unknown operation %d", op.Name, op.Op)
		}
	}
	return next, 0, nil
}

// brokerReplacement is the full dynamic config set an AlterConfigs broker
// resource asks for (keys not given are removed, as in Kafka).
func brokerReplacement(cs []kmsg.AlterConfigsRequestResourceConfig) (map[string]string, int16, error) {
	next := make(map[string]string, len(cs))
	for _, kc := range cs {
		if _, dup := next[kc.Name]; dup {
			return nil, kerr.InvalidRequest.Code, fmt.Errorf("config %q is given more than once", kc.Name)
		}
		if kc.Value == nil {
			return nil, kerr.InvalidConfig.Code, fmt.Errorf("config %q: null value", kc.Name)
		}
		next[kc.Name] = *kc.Value
	}
	return next, 0, nil
}

// dynamicBrokerEntries describes the dynamic broker configs of resource
// name ("" = the cluster default) in a cluster: for a broker, every rate
// with its effective value; for the default, the rates set there. Nil
// standalone.
func (n *Node) dynamicBrokerEntries(name string) []brokerEntry {
	c := n.cluster
	if c == nil {
		return nil
	}
	s, _ := c.currentView()
	var out []brokerEntry
	for _, d := range dynamicBrokerConfigs {
		e := brokerEntry{name: d.name, typ: kmsg.ConfigTypeLong, doc: d.doc, def: sp(unlimitedRate), dynamicKey: true}
		if v, ok := s.BrokerConfigs[name][d.name]; ok {
			e.value, e.dynamic = sp(v), kmsg.ConfigSourceDynamicBrokerConfig
			if name == "" {
				e.dynamic = kmsg.ConfigSourceDynamicDefaultBrokerConfig
			}
		}
		if name != "" {
			if v, ok := s.BrokerConfigs[""][d.name]; ok {
				e.clusterDefault = sp(v)
				if e.value == nil {
					e.value, e.dynamic = sp(v), kmsg.ConfigSourceDynamicDefaultBrokerConfig
				}
			}
		}
		if e.value == nil {
			if name == "" {
				continue // the default resource lists what is set there
			}
			e.value = sp(unlimitedRate)
		}
		out = append(out, e)
	}
	return out
}
