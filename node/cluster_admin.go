package node

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/ctrl"
	"github.com/sluicemq/sluice/segstore"
)

// Admin changes: standalone they change the registry directly; in a
// cluster they go to the active controller (as Kafka's brokers forward
// them) and return once this broker's metadata shows the outcome, so a
// client's next request to this broker sees it.

// adminTimeout bounds a forwarded change and the wait for its metadata.
const adminTimeout = 30 * time.Second

func (n *Node) createTopic(name string, parts int32, rf int16, configs map[string]string, validateOnly bool) (*topic, error) {
	c := n.cluster
	if c == nil {
		return n.reg.create(name, parts, rf, configs, validateOnly)
	}
	if parts < 1 {
		return nil, fmt.Errorf("%w: %d partitions (must be at least 1)", errInvalidParts, parts)
	}
	if err := segstore.ValidateTopic(name); err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidTopic, err)
	}
	for k, v := range configs {
		if err := checkTopicConfig(k, &v); err != nil {
			return nil, fmt.Errorf("%w: %w", errInvalidConfig, err)
		}
	}
	if validateOnly {
		s, _ := c.currentView()
		switch {
		case s.Topics[name] != nil:
			return nil, fmt.Errorf("%w: %q", errTopicExists, name)
		case int(rf) > len(s.LiveBrokers()) || rf < 1:
			return nil, fmt.Errorf("%w: %d, with %d live brokers", errInvalidReplica, rf, len(s.LiveBrokers()))
		}
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	id, err := c.client.CreateTopic(ctx, name, int(parts), int(rf), trimConfigs(configs))
	if err != nil {
		return nil, err
	}
	if err := c.waitView(ctx, func(s *ctrl.State) bool { t := s.Topics[name]; return t != nil && t.ID == id }); err != nil {
		return nil, err
	}
	if t := n.reg.get(name); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("%w: topic %q was deleted right after it was created", kerr.UnknownTopicOrPartition, name)
}

func (n *Node) deleteTopic(name string) error {
	c := n.cluster
	if c == nil {
		return n.reg.delete(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := c.client.DeleteTopic(ctx, name); err != nil {
		return err
	}
	return c.waitView(ctx, func(s *ctrl.State) bool { return s.Topics[name] == nil })
}

func (n *Node) addPartitions(name string, total int32, validateOnly bool) error {
	c := n.cluster
	if c == nil || validateOnly {
		return n.reg.addPartitions(name, total, validateOnly)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := c.client.CreatePartitions(ctx, name, int(total)); err != nil {
		return err
	}
	return c.waitView(ctx, func(s *ctrl.State) bool { t := s.Topics[name]; return t != nil && len(t.Partitions) >= int(total) })
}

// setTopicConfigs replaces a topic's overrides (already validated).
func (n *Node) setTopicConfigs(t *topic, overrides map[string]string) error {
	c := n.cluster
	if c == nil {
		return n.reg.setConfigs(t, overrides)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := c.client.SetConfigs(ctx, 2, t.name, trimConfigs(overrides)); err != nil {
		return err
	}
	want := trimConfigs(overrides)
	return c.waitView(ctx, func(s *ctrl.State) bool {
		ct := s.Topics[t.name]
		if ct == nil || ct.ID != t.id {
			return true // gone: nothing more to wait for
		}
		if len(ct.Configs) != len(want) {
			return false
		}
		for k, v := range want {
			if ct.Configs[k] != v {
				return false
			}
		}
		return true
	})
}

// brokerInfo is one broker as Metadata and DescribeCluster list it.
type brokerInfo struct {
	id   int32
	host string
	port int32
	rack *string
}

// brokers lists the live brokers: this one standalone; the unfenced
// brokers of the metadata in a cluster (Kafka lists fenced ones only on
// request), sorted by id. Until this broker learned any, itself.
func (n *Node) brokers() []brokerInfo {
	self := func() []brokerInfo {
		b := brokerInfo{id: n.cfg.NodeID}
		b.host, b.port = n.advertised()
		if n.cfg.Rack != "" {
			b.rack = &n.cfg.Rack
		}
		return []brokerInfo{b}
	}
	if n.cluster == nil {
		return self()
	}
	s, _ := n.cluster.currentView()
	var out []brokerInfo
	for _, b := range s.LiveBrokers() {
		e, ok := brokerEndpoint(b)
		if !ok {
			continue
		}
		bi := brokerInfo{id: b.ID, host: e.Host, port: e.Port}
		if b.Rack != "" {
			r := b.Rack
			bi.rack = &r
		}
		out = append(out, bi)
	}
	if len(out) == 0 {
		return self()
	}
	return out
}
