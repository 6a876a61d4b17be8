package ctrl

import (
	"maps"
	"slices"
	"sort"
)

// NoLeader is the leader id of a partition that has none (offline).
const NoLeader int32 = -1

// Broker is a registered broker as the metadata log knows it.
type Broker struct {
	ID          int32      `json:"id"`
	Incarnation string     `json:"incarnation"`
	Epoch       int64      `json:"epoch"` // log index of the registration record
	Listeners   []Endpoint `json:"listeners"`
	Rack        string     `json:"rack,omitempty"`
	Fenced      bool       `json:"fenced"`
	// LastSeenMs is the controller time recorded in the last record that showed this broker alive (register,
	// unfence). It is log data, so every controller agrees on it; live session tracking is in memory on the active
	// controller (see Session) and never reaches the log except as Fence/Unfence.
	LastSeenMs int64 `json:"lastSeenMs"`
}

// Partition is one partition's replication state.
type Partition struct {
	Replicas       []int32 `json:"replicas"` // assignment order; Replicas[0] is the preferred leader
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leaderEpoch"`
	PartitionEpoch int32   `json:"partitionEpoch"`
	// AddingReplicas and RemovingReplicas describe a reassignment in progress (reassign.go); both are empty when
	// none is. Replicas is then the target replicas followed by the removing ones.
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// Topic is a topic with its partitions, indexed by partition number.
type Topic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []Partition       `json:"partitions"`
}

// State is the whole replicated metadata. Every controller applies the same records in the same order and so holds
// an identical State. State is not safe for concurrent mutation; Node guards its copy (see Node.Read).
type State struct {
	Brokers map[int32]*Broker `json:"brokers"`
	Topics  map[string]*Topic `json:"topics"`
	// BrokerConfigs holds broker-level dynamic configs by broker id ("" is the cluster-wide default).
	BrokerConfigs  map[string]map[string]string `json:"brokerConfigs,omitempty"`
	NextProducerID int64                        `json:"nextProducerId"`
	// AppliedIndex is the raft index of the last entry applied, 0 before any.
	AppliedIndex uint64 `json:"appliedIndex"`

	topicsByID map[TopicID]string // derived; rebuilt on restore
	// uncleanDefault is this controller's static unclean.leader.election.enable (Config.UncleanLeaderElection):
	// not replicated, as in Kafka each controller reads its own server.properties. The Node sets it on every
	// state it installs.
	uncleanDefault bool
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Brokers: map[int32]*Broker{}, Topics: map[string]*Topic{}, BrokerConfigs: map[string]map[string]string{},
		topicsByID: map[TopicID]string{}}
}

// TopicByID returns the topic with that id, or nil.
func (s *State) TopicByID(id TopicID) *Topic {
	if name, ok := s.topicsByID[id]; ok {
		return s.Topics[name]
	}
	return nil
}

// Live reports whether broker id is registered and unfenced: eligible to lead and to be in an ISR.
func (s *State) Live(id int32) bool {
	b := s.Brokers[id]
	return b != nil && !b.Fenced
}

// LiveBrokers returns the unfenced brokers sorted by id.
func (s *State) LiveBrokers() []*Broker {
	var out []*Broker
	for _, b := range s.Brokers {
		if !b.Fenced {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TopicNames returns the topic names sorted, for deterministic iteration.
func (s *State) TopicNames() []string {
	names := slices.Collect(maps.Keys(s.Topics))
	sort.Strings(names)
	return names
}

// Config returns the effective value of a topic config key: the topic's own, else the cluster-wide dynamic broker
// default (SetConfig on ResourceBroker with Name ""), else def.
func (s *State) Config(topic, key string, def string) string {
	if t := s.Topics[topic]; t != nil {
		if v, ok := t.Configs[key]; ok {
			return v
		}
	}
	if v, ok := s.BrokerConfigs[""][key]; ok {
		return v
	}
	return def
}

// UncleanAllowed reports unclean.leader.election.enable for a topic: its own config, else the cluster-wide
// dynamic default, else the controller's static one (false unless configured, as Kafka).
func (s *State) UncleanAllowed(topic string) bool {
	def := "false"
	if s.uncleanDefault {
		def = "true"
	}
	return s.Config(topic, "unclean.leader.election.enable", def) == "true"
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	c := NewState()
	c.NextProducerID, c.AppliedIndex, c.uncleanDefault = s.NextProducerID, s.AppliedIndex, s.uncleanDefault
	for id, b := range s.Brokers {
		nb := *b
		nb.Listeners = slices.Clone(b.Listeners)
		c.Brokers[id] = &nb
	}
	for name, t := range s.Topics {
		nt := &Topic{Name: t.Name, ID: t.ID, Configs: maps.Clone(t.Configs), Partitions: make([]Partition, len(t.Partitions))}
		for i, p := range t.Partitions {
			nt.Partitions[i] = p.clone()
		}
		c.Topics[name] = nt
		c.topicsByID[t.ID] = name
	}
	for k, m := range s.BrokerConfigs {
		c.BrokerConfigs[k] = maps.Clone(m)
	}
	return c
}

func (p Partition) clone() Partition {
	p.Replicas, p.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
	p.AddingReplicas, p.RemovingReplicas = slices.Clone(p.AddingReplicas), slices.Clone(p.RemovingReplicas)
	return p
}
