package ctrl

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// SnapshotVersion is the first byte of an encoded State.
const SnapshotVersion = 1

// MarshalSnapshot encodes the whole state (version byte + JSON; maps encode with sorted keys, so two controllers
// with equal states produce equal bytes). Not safe for concurrent use with Apply.
func (s *State) MarshalSnapshot() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(SnapshotVersion)
	if err := json.NewEncoder(&buf).Encode(s); err != nil {
		return nil, fmt.Errorf("ctrl: encode state snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalSnapshot decodes what MarshalSnapshot wrote and checks the state's internal consistency. It is pure.
func UnmarshalSnapshot(b []byte) (*State, error) {
	if len(b) == 0 || b[0] != SnapshotVersion {
		return nil, fmt.Errorf("ctrl: state snapshot: want version byte %d", SnapshotVersion)
	}
	s := NewState()
	dec := json.NewDecoder(bytes.NewReader(b[1:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("ctrl: decode state snapshot: %w", err)
	}
	if s.Brokers == nil {
		s.Brokers = map[int32]*Broker{}
	}
	if s.Topics == nil {
		s.Topics = map[string]*Topic{}
	}
	if s.BrokerConfigs == nil {
		s.BrokerConfigs = map[string]map[string]string{}
	}
	for id, b := range s.Brokers {
		if b == nil || b.ID != id {
			return nil, fmt.Errorf("ctrl: state snapshot: broker entry %d is empty or names another id", id)
		}
	}
	for name, t := range s.Topics {
		if t == nil || t.Name != name {
			return nil, fmt.Errorf("ctrl: state snapshot: topic entry %q is empty or names another topic", name)
		}
		if other, dup := s.topicsByID[t.ID]; dup {
			return nil, fmt.Errorf("ctrl: state snapshot: topics %q and %q share id %v", name, other, t.ID)
		}
		s.topicsByID[t.ID] = name
		for i, p := range t.Partitions {
			what := fmt.Sprintf("ctrl: state snapshot: %s-%d", name, i)
			if err := checkReassignShape(what, p.Replicas, p.AddingReplicas, p.RemovingReplicas); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}
