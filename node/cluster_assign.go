package node

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/ctrl"
	"github.com/sluicemq/sluice/segstore"
)

// Explicit replica assignments in a cluster (CreateTopics' Assignments,
// CreatePartitions' Assignment): the active controller validates them
// (ctrl.ValidateAssignment) and the broker waits until its metadata shows
// the outcome, as for placed topics (cluster_admin.go).

// createTopicAssigned creates topic name with assign[i] as partition i's
// replicas (the first preferred). Cluster mode only.
func (n *Node) createTopicAssigned(name string, assign [][]int32, configs map[string]string, validateOnly bool) (*topic, error) {
	c := n.cluster
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
		if s.Topics[name] != nil {
			return nil, fmt.Errorf("%w: %q", errTopicExists, name)
		}
		_, err := ctrl.ValidateAssignment(s, assign, 0)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	id, err := c.client.CreateTopicAssigned(ctx, name, assign, trimConfigs(configs))
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

// addPartitionsAssigned grows topic name to total partitions, the new ones
// on the replicas assign lists (one list per new partition). Cluster mode
// only.
func (n *Node) addPartitionsAssigned(name string, total int32, assign [][]int32, validateOnly bool) error {
	c := n.cluster
	if validateOnly {
		s, _ := c.currentView()
		t := s.Topics[name]
		switch {
		case t == nil:
			return fmt.Errorf("%w: %q", errUnknownTopic, name)
		case int(total) <= len(t.Partitions):
			return fmt.Errorf("%w: topic %q has %d partitions, asked for %d", errInvalidParts, name, len(t.Partitions), total)
		case len(assign) != int(total)-len(t.Partitions):
			return fmt.Errorf("%w: adding %d partitions but %d assignments given", kerr.InvalidReplicaAssignment,
				int(total)-len(t.Partitions), len(assign))
		}
		_, err := ctrl.ValidateAssignment(s, assign, len(t.Partitions[0].Replicas))
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := c.client.CreatePartitionsAssigned(ctx, name, int(total), assign); err != nil {
		return err
	}
	return c.waitView(ctx, func(s *ctrl.State) bool { t := s.Topics[name]; return t != nil && len(t.Partitions) >= int(total) })
}
