package ctrl

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ValidTopicName applies Kafka's rule: 1..249 characters of [a-zA-Z0-9._-], and not "." or "..".
func ValidTopicName(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// checkPartition validates a partition's replicas, ISR and leader against the registered brokers.
func (s *State) checkPartition(what string, replicas, isr []int32, leader int32) error {
	if len(replicas) == 0 {
		return invalidKerr(kerr.InvalidReplicaAssignment, "%s: no replicas", what)
	}
	seen := map[int32]bool{}
	for _, r := range replicas {
		if seen[r] {
			return invalidKerr(kerr.InvalidReplicaAssignment, "%s: replica %d twice in %v", what, r, replicas)
		}
		seen[r] = true
		if s.Brokers[r] == nil {
			return invalidKerr(kerr.InvalidReplicaAssignment, "%s: replica %d is not a registered broker", what, r)
		}
	}
	// KRaft never empties an ISR: its last member stays (and an unclean election is needed to replace it).
	if len(isr) == 0 {
		return invalidKerr(kerr.InvalidRequest, "%s: empty ISR", what)
	}
	inISR := map[int32]bool{}
	for _, r := range isr {
		if !seen[r] {
			return invalidKerr(kerr.InvalidRequest, "%s: ISR member %d is not a replica of %v", what, r, replicas)
		}
		if inISR[r] {
			return invalidKerr(kerr.InvalidRequest, "%s: ISR member %d twice in %v", what, r, isr)
		}
		inISR[r] = true
	}
	if leader != NoLeader {
		if !inISR[leader] {
			return invalidKerr(kerr.InvalidRequest, "%s: leader %d is not in the ISR %v", what, leader, isr)
		}
		if !s.Live(leader) {
			return invalidKerr(kerr.IneligibleReplica, "%s: leader %d is fenced", what, leader)
		}
	}
	return nil
}

func (s *State) newPartitions(what string, ps []PartitionInit) ([]Partition, error) {
	if len(ps) == 0 {
		return nil, invalidKerr(kerr.InvalidPartitions, "%s: no partitions", what)
	}
	out := make([]Partition, len(ps))
	for i, p := range ps {
		if err := s.checkPartition(what, p.Replicas, p.ISR, p.Leader); err != nil {
			return nil, err
		}
		out[i] = Partition{Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR), Leader: p.Leader}
	}
	return out, nil
}

func (s *State) applyCreateTopic(r *CreateTopic) error {
	if !ValidTopicName(r.Name) {
		return invalidKerr(kerr.InvalidTopicException, "CreateTopic: invalid topic name %q", r.Name)
	}
	if s.Topics[r.Name] != nil {
		return invalidKerr(kerr.TopicAlreadyExists, "CreateTopic: topic %q exists", r.Name)
	}
	if r.ID == (TopicID{}) || s.topicsByID[r.ID] != "" {
		return invalidKerr(kerr.InvalidRequest, "CreateTopic %q: topic id %v is zero or in use", r.Name, r.ID)
	}
	if v, ok := r.Configs["unclean.leader.election.enable"]; ok && v != "true" && v != "false" {
		return invalidKerr(kerr.InvalidConfig, "CreateTopic %q: unclean.leader.election.enable=%q", r.Name, v)
	}
	parts, err := s.newPartitions("CreateTopic "+r.Name, r.Partitions)
	if err != nil {
		return err
	}
	s.Topics[r.Name] = &Topic{Name: r.Name, ID: r.ID, Configs: maps.Clone(r.Configs), Partitions: parts}
	s.topicsByID[r.ID] = r.Name
	return nil
}

// topicAt finds a topic by name and checks its id, so a record computed for a deleted and re-created topic of the
// same name cannot touch the new one.
func (s *State) topicAt(name string, id TopicID, what string) (*Topic, error) {
	t := s.Topics[name]
	if t == nil {
		return nil, invalidKerr(kerr.UnknownTopicOrPartition, "%s: no topic %q", what, name)
	}
	if t.ID != id {
		return nil, invalidKerr(kerr.UnknownTopicID, "%s: topic %q has id %v, not %v", what, name, t.ID, id)
	}
	return t, nil
}

func (s *State) applyDeleteTopic(r *DeleteTopic) error {
	if _, err := s.topicAt(r.Name, r.ID, "DeleteTopic"); err != nil {
		return err
	}
	delete(s.Topics, r.Name)
	delete(s.topicsByID, r.ID)
	return nil
}

func (s *State) applyCreatePartitions(r *CreatePartitions) error {
	t, err := s.topicAt(r.Topic, r.ID, "CreatePartitions")
	if err != nil {
		return err
	}
	parts, err := s.newPartitions("CreatePartitions "+r.Topic, r.Partitions)
	if err != nil {
		return err
	}
	t.Partitions = append(t.Partitions, parts...)
	return nil
}

func (s *State) applyChangePartition(r *ChangePartition) error {
	t, err := s.topicAt(r.Topic, r.ID, "ChangePartition")
	if err != nil {
		return err
	}
	if r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
		return invalidKerr(kerr.UnknownTopicOrPartition, "ChangePartition: %s has no partition %d", r.Topic, r.Partition)
	}
	p := &t.Partitions[r.Partition]
	if r.PartitionEpoch != p.PartitionEpoch {
		return invalidKerr(kerr.InvalidUpdateVersion, "ChangePartition %s-%d: computed from partition epoch %d, current %d",
			r.Topic, r.Partition, r.PartitionEpoch, p.PartitionEpoch)
	}
	what := "ChangePartition " + r.Topic
	if err := s.checkPartition(what, p.Replicas, r.ISR, r.Leader); err != nil {
		return err
	}
	if r.Leader == p.Leader && slices.Equal(r.ISR, p.ISR) {
		return invalid("ChangePartition %s-%d: no change", r.Topic, r.Partition)
	}
	if r.Leader != p.Leader {
		p.LeaderEpoch++
	}
	p.PartitionEpoch++
	p.Leader, p.ISR = r.Leader, slices.Clone(r.ISR)
	return nil
}
