package ctrl

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrInvalidRecord marks a record that is well-formed but not a valid change of the current state. Such a record
// is rejected at apply: it is still consumed (it is in the log) but changes nothing, on every controller alike.
var ErrInvalidRecord = errors.New("ctrl: invalid record")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRecord, fmt.Sprintf(format, args...))
}

// invalidKerr is invalid() that also matches a Kafka error code with errors.Is, so a handler can answer with it.
func invalidKerr(code *kerr.Error, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrInvalidRecord, code, fmt.Sprintf(format, args...))
}

// Apply validates r against the state and, if valid, applies it as the raft entry at index. An invalid record
// leaves the state unchanged (a Batch all or nothing) and returns an error wrapping ErrInvalidRecord. AppliedIndex
// advances either way, since the entry was consumed. Apply is deterministic: the result depends only on the
// state, r and index. Not safe for concurrent use.
func (s *State) Apply(r Record, index uint64) error {
	if index <= s.AppliedIndex {
		return fmt.Errorf("ctrl: BUG: apply of index %d after index %d", index, s.AppliedIndex)
	}
	err := r.checkShape(true)
	if err == nil {
		if r.Type == TypeBatch {
			err = s.applyBatch(r.Batch, index)
		} else {
			err = s.applyOne(r, index)
		}
	}
	s.AppliedIndex = index
	return err
}

// applyBatch applies to a copy and keeps it only when every member applied, so a failure midway leaves nothing.
// The copy costs O(state); batches are rare (broker fencing, registration), so simplicity wins over speed here.
func (s *State) applyBatch(rs []Record, index uint64) error {
	c := s.Clone()
	for i, m := range rs {
		if err := c.applyOne(m, index); err != nil {
			return fmt.Errorf("batch member %d (%v): %w", i, m.Type, err)
		}
	}
	c.AppliedIndex = s.AppliedIndex
	*s = *c
	return nil
}

func (s *State) applyOne(r Record, index uint64) error {
	switch r.Type {
	case TypeRegisterBroker:
		return s.applyRegister(r.RegisterBroker, index)
	case TypeFenceBroker:
		return s.applyFence(r.FenceBroker)
	case TypeUnfenceBroker:
		return s.applyUnfence(r.UnfenceBroker)
	case TypeCreateTopic:
		return s.applyCreateTopic(r.CreateTopic)
	case TypeDeleteTopic:
		return s.applyDeleteTopic(r.DeleteTopic)
	case TypeCreatePartitions:
		return s.applyCreatePartitions(r.CreatePartitions)
	case TypeChangePartition:
		return s.applyChangePartition(r.ChangePartition)
	case TypeSetConfig:
		return s.applySetConfig(r.SetConfig)
	case TypeAllocateProducerIDs:
		return s.applyAllocate(r.AllocateProducerIDs)
	case TypeReassignPartition:
		return s.applyReassign(r.ReassignPartition)
	case TypeUnregisterBroker:
		return s.applyUnregister(r.UnregisterBroker)
	}
	return invalid("record type %v cannot be applied here", r.Type)
}

func (s *State) applyRegister(r *RegisterBroker, index uint64) error {
	if r.ID < 0 {
		return invalid("RegisterBroker: broker id %d is negative", r.ID)
	}
	if r.Incarnation == "" {
		return invalid("RegisterBroker %d: empty incarnation id", r.ID)
	}
	if len(r.Listeners) == 0 {
		return invalid("RegisterBroker %d: no listeners", r.ID)
	}
	seen := map[string]bool{}
	for _, l := range r.Listeners {
		if l.Name == "" || l.Host == "" || l.Port <= 0 || l.Port > 65535 {
			return invalid("RegisterBroker %d: listener %+v needs a name, a host and a port in 1..65535", r.ID, l)
		}
		if seen[l.Name] {
			return invalid("RegisterBroker %d: listener %q twice", r.ID, l.Name)
		}
		seen[l.Name] = true
	}
	if old := s.Brokers[r.ID]; old != nil && !old.Fenced {
		// The new incarnation starts fenced; the old one must first hand its leaderships away (see FenceChanges).
		if p := s.ledBy(r.ID); p != "" {
			return invalidKerr(kerr.DuplicateBrokerRegistration, "RegisterBroker %d: still unfenced and leads %s", r.ID, p)
		}
	}
	s.Brokers[r.ID] = &Broker{ID: r.ID, Incarnation: r.Incarnation, Epoch: int64(index),
		Listeners: slices.Clone(r.Listeners), Rack: r.Rack, Fenced: true, LastSeenMs: r.TimeMs}
	return nil
}

func (s *State) brokerAt(id int32, epoch int64, what string) (*Broker, error) {
	b := s.Brokers[id]
	if b == nil {
		return nil, invalidKerr(kerr.BrokerIDNotRegistered, "%s: broker %d is not registered", what, id)
	}
	if b.Epoch != epoch {
		return nil, invalidKerr(kerr.StaleBrokerEpoch, "%s: broker %d epoch %d, current %d", what, id, epoch, b.Epoch)
	}
	return b, nil
}

func (s *State) applyFence(r *FenceBroker) error {
	b, err := s.brokerAt(r.ID, r.Epoch, "FenceBroker")
	if err != nil {
		return err
	}
	if b.Fenced {
		return invalid("FenceBroker: broker %d is already fenced", r.ID)
	}
	if p := s.ledBy(r.ID); p != "" {
		return invalid("FenceBroker: broker %d still leads %s; move leadership first (FenceChanges)", r.ID, p)
	}
	b.Fenced = true
	return nil
}

func (s *State) applyUnfence(r *UnfenceBroker) error {
	b, err := s.brokerAt(r.ID, r.Epoch, "UnfenceBroker")
	if err != nil {
		return err
	}
	if !b.Fenced {
		return invalid("UnfenceBroker: broker %d is not fenced", r.ID)
	}
	b.Fenced, b.LastSeenMs = false, r.TimeMs
	return nil
}

// ledBy names one partition broker id leads, or "" if none. Linear in partitions; used on fence/register only.
func (s *State) ledBy(id int32) string {
	for _, name := range s.TopicNames() {
		for i, p := range s.Topics[name].Partitions {
			if p.Leader == id {
				return name + "-" + strconv.Itoa(i)
			}
		}
	}
	return ""
}

func (s *State) applySetConfig(r *SetConfig) error {
	if r.Key == "" || len(r.Key) > 255 {
		return invalidKerr(kerr.InvalidConfig, "SetConfig: key must be 1..255 bytes")
	}
	if r.Value != nil && len(*r.Value) > 64<<10 {
		return invalidKerr(kerr.InvalidConfig, "SetConfig %s: value above 64 KiB", r.Key)
	}
	if r.Key == "unclean.leader.election.enable" && r.Value != nil && *r.Value != "true" && *r.Value != "false" {
		return invalidKerr(kerr.InvalidConfig, "SetConfig %s: %q is not true or false", r.Key, *r.Value)
	}
	var m map[string]string
	switch r.Resource {
	case ResourceTopic:
		t := s.Topics[r.Name]
		if t == nil {
			return invalidKerr(kerr.UnknownTopicOrPartition, "SetConfig: no topic %q", r.Name)
		}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		m = t.Configs
	case ResourceBroker:
		if r.Name != "" {
			if id, err := strconv.ParseInt(r.Name, 10, 32); err != nil || id < 0 || strconv.Itoa(int(id)) != r.Name {
				return invalidKerr(kerr.InvalidConfig, "SetConfig: broker resource name %q is not a broker id", r.Name)
			}
		}
		if s.BrokerConfigs[r.Name] == nil {
			s.BrokerConfigs[r.Name] = map[string]string{}
		}
		m = s.BrokerConfigs[r.Name]
	default:
		return invalidKerr(kerr.InvalidRequest, "SetConfig: unknown resource kind %q", r.Resource)
	}
	if r.Value == nil {
		delete(m, r.Key)
	} else {
		m[r.Key] = *r.Value
	}
	return nil
}

// ProducerIDBlockSize is the block a broker gets per AllocateProducerIDs, as Kafka's controller hands out.
const ProducerIDBlockSize = 1000

func (s *State) applyAllocate(r *AllocateProducerIDs) error {
	if _, err := s.brokerAt(r.BrokerID, r.BrokerEpoch, "AllocateProducerIDs"); err != nil {
		return err
	}
	if r.First != s.NextProducerID {
		return invalid("AllocateProducerIDs: block starts at %d, next free id is %d", r.First, s.NextProducerID)
	}
	if r.Size <= 0 || r.Size > 1<<20 {
		return invalid("AllocateProducerIDs: block size %d outside 1..%d", r.Size, 1<<20)
	}
	if r.First > (1<<63-1)-int64(r.Size) {
		return invalid("AllocateProducerIDs: producer ids exhausted")
	}
	s.NextProducerID = r.First + int64(r.Size)
	return nil
}
