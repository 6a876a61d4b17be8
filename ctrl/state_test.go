package ctrl

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func reg(id int32) Record {
	return Record{Type: TypeRegisterBroker, RegisterBroker: &RegisterBroker{ID: id, Incarnation: "x",
		Listeners: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 9092}}}}
}

func unfence(id int32, epoch int64) Record {
	return Record{Type: TypeUnfenceBroker, UnfenceBroker: &UnfenceBroker{ID: id, Epoch: epoch}}
}

func topicRec(name string, id byte, leader int32, replicas ...int32) Record {
	return Record{Type: TypeCreateTopic, CreateTopic: &CreateTopic{Name: name, ID: TopicID{id},
		Partitions: []PartitionInit{{Replicas: replicas, ISR: replicas, Leader: leader}}}}
}

// baseState has brokers 1,2,3 registered at indexes 1..3 and unfenced at 4..6; AppliedIndex 6.
func baseState(t *testing.T) *State {
	t.Helper()
	s := NewState()
	for i, r := range []Record{reg(1), reg(2), reg(3), unfence(1, 1), unfence(2, 2), unfence(3, 3)} {
		if err := s.Apply(r, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestApplyValidation(t *testing.T) {
	f := func(prep []Record, r Record, want error) {
		t.Helper()
		s := baseState(t)
		for i, p := range prep {
			if err := s.Apply(p, uint64(10+i)); err != nil {
				t.Fatalf("prep %d: %v", i, err)
			}
		}
		before, _ := s.MarshalSnapshot()
		err := s.Apply(r, 100)
		if want == nil {
			if err != nil {
				t.Fatalf("%v: %v", r.Type, err)
			}
			return
		}
		if !errors.Is(err, want) || !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("%v: err %v, want %v", r.Type, err, want)
		}
		if s.AppliedIndex != 100 || !sameExceptApplied(t, before, s) {
			t.Fatalf("%v: rejected record changed the state", r.Type)
		}
	}
	ok := topicRec("t", 1, 1, 1, 2, 3)
	f(nil, ok, nil)
	f([]Record{ok}, topicRec("t", 2, 1, 1), kerr.TopicAlreadyExists)
	f([]Record{ok}, topicRec("u", 1, 1, 1), kerr.InvalidRequest) // id reused
	f(nil, topicRec("bad/name", 1, 1, 1), kerr.InvalidTopicException)
	f(nil, topicRec("t", 1, 1, 1, 1), kerr.InvalidReplicaAssignment)
	f(nil, topicRec("t", 1, 9, 9), kerr.InvalidReplicaAssignment) // unregistered broker
	f(nil, topicRec("t", 1, 4, 1, 2), kerr.InvalidRequest)        // leader outside ISR
	f(nil, reg(-1), ErrInvalidRecord)
	f(nil, Record{Type: TypeFenceBroker, FenceBroker: &FenceBroker{ID: 1, Epoch: 7}}, kerr.StaleBrokerEpoch)
	f([]Record{ok}, Record{Type: TypeFenceBroker, FenceBroker: &FenceBroker{ID: 1, Epoch: 1}}, ErrInvalidRecord) // still leads
	f(nil, unfence(1, 1), ErrInvalidRecord)                                                                      // not fenced
	f([]Record{ok}, Record{Type: TypeChangePartition, ChangePartition: &ChangePartition{Topic: "t", ID: TopicID{1},
		PartitionEpoch: 3, Leader: 2, ISR: []int32{2}}}, kerr.InvalidUpdateVersion)
	f([]Record{ok}, Record{Type: TypeChangePartition, ChangePartition: &ChangePartition{Topic: "t", ID: TopicID{1},
		Leader: 2, ISR: []int32{}}}, kerr.InvalidRequest)
	f([]Record{ok}, Record{Type: TypeDeleteTopic, DeleteTopic: &DeleteTopic{Name: "t", ID: TopicID{2}}}, kerr.UnknownTopicID)
	v := "maybe"
	f(nil, Record{Type: TypeSetConfig, SetConfig: &SetConfig{Resource: ResourceBroker, Key: "unclean.leader.election.enable", Value: &v}}, kerr.InvalidConfig)
	f(nil, Record{Type: TypeAllocateProducerIDs, AllocateProducerIDs: &AllocateProducerIDs{BrokerID: 1, BrokerEpoch: 1, First: 5, Size: 1000}}, ErrInvalidRecord)
	// A batch is all or nothing: a valid change followed by an invalid one leaves nothing behind.
	f([]Record{ok}, Record{Type: TypeBatch, Batch: []Record{
		{Type: TypeChangePartition, ChangePartition: &ChangePartition{Topic: "t", ID: TopicID{1}, Leader: 1, ISR: []int32{1}}},
		topicRec("t", 3, 1, 1)}}, kerr.TopicAlreadyExists)
}

func sameExceptApplied(t *testing.T, before []byte, s *State) bool {
	t.Helper()
	b, _ := UnmarshalSnapshot(before)
	b.AppliedIndex = s.AppliedIndex
	x, _ := b.MarshalSnapshot()
	y, _ := s.MarshalSnapshot()
	return bytes.Equal(x, y)
}

func TestChangePartitionEpochs(t *testing.T) {
	s := baseState(t)
	if err := s.Apply(topicRec("t", 1, 1, 1, 2, 3), 7); err != nil {
		t.Fatal(err)
	}
	ch := func(pe, leader int32, isr ...int32) Record {
		return Record{Type: TypeChangePartition, ChangePartition: &ChangePartition{Topic: "t", ID: TopicID{1},
			PartitionEpoch: pe, Leader: leader, ISR: isr}}
	}
	steps := []struct {
		r      Record
		le, pe int32
	}{
		{ch(0, 1, 1, 2), 0, 1}, // ISR shrink: partition epoch only
		{ch(1, 2, 1, 2), 1, 2}, // leader change: both
		{ch(2, 2, 2), 1, 3},
	}
	for i, st := range steps {
		if err := s.Apply(st.r, uint64(8+i)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		p := s.Topics["t"].Partitions[0]
		if p.LeaderEpoch != st.le || p.PartitionEpoch != st.pe {
			t.Fatalf("step %d: epochs %d/%d, want %d/%d", i, p.LeaderEpoch, p.PartitionEpoch, st.le, st.pe)
		}
	}
}

func TestRecordCodec(t *testing.T) {
	v := "true"
	recs := []Record{reg(1), unfence(1, 4), topicRec("t", 1, 1, 1, 2),
		{Type: TypeSetConfig, SetConfig: &SetConfig{Resource: ResourceTopic, Name: "t", Key: "k", Value: &v}},
		{Type: TypeBatch, Batch: []Record{reg(2), unfence(2, 5)}}}
	for _, r := range recs {
		b, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("%v: %v", r.Type, err)
		}
		b2, _ := EncodeRecord(got)
		if !bytes.Equal(b, b2) {
			t.Fatalf("%v: round trip differs:\n%s\n%s", r.Type, b, b2)
		}
	}
	f := func(in string, want string) {
		t.Helper()
		_, err := DecodeRecord([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("DecodeRecord(%q) = %v, want error containing %q", in, err, want)
		}
	}
	f("", "empty")
	f("\x02{}", "version 2")
	f("\x01{\"type\":1}", "exactly its own body")
	f("\x01{\"type\":1,\"fenceBroker\":{}}", "exactly its own body")
	f("\x01{\"type\":99,\"fenceBroker\":{}}", "unknown record type")
	f("\x01{\"type\":2,\"fenceBroker\":{},\"extra\":1}", "unknown field")
	f("\x01{\"type\":2,\"fenceBroker\":{}} {}", "trailing")
	f("\x01{\"type\":10,\"batch\":[{\"type\":10,\"batch\":[]}]}", "do not nest")
	f("\x01{\"type\":4,\"createTopic\":{\"id\":\"short\"}}", "topic id")
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := baseState(t)
	if err := s.Apply(topicRec("t", 1, 1, 1, 2, 3), 7); err != nil {
		t.Fatal(err)
	}
	b, err := s.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	r, err := UnmarshalSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.TopicByID(TopicID{1}) == nil {
		t.Fatal("restored state lost its topic-id index")
	}
	b2, _ := r.MarshalSnapshot()
	if !bytes.Equal(b, b2) {
		t.Fatal("snapshot round trip differs")
	}
	if _, err := UnmarshalSnapshot(append([]byte{1}, `{"topics":{"a":{"name":"b"}}}`...)); err == nil {
		t.Fatal("inconsistent snapshot accepted")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []Record{reg(1), topicRec("t", 1, 1, 1, 2), {Type: TypeBatch, Batch: []Record{reg(2), unfence(2, 5)}}} {
		b, _ := EncodeRecord(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode, decode the same, and apply without panicking.
		b2, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		if _, err := DecodeRecord(b2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		_ = baseState(t).Apply(r, 100)
	})
}
