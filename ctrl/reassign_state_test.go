package ctrl

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func reassignRec(pe, leader int32, replicas, adding, removing, isr []int32) Record {
	return Record{Type: TypeReassignPartition, ReassignPartition: &ReassignPartition{Topic: "t", ID: TopicID{1},
		PartitionEpoch: pe, Replicas: replicas, Adding: adding, Removing: removing, ISR: isr, Leader: leader}}
}

func ids(v ...int32) []int32 { return v }

// TestApplyReassignValidation: Apply's checks of ReassignPartition and UnregisterBroker records. "t" is on 1,2
// (ISR 1,2, leader 1); broker 3 is unfenced and holds nothing.
func TestApplyReassignValidation(t *testing.T) {
	f := func(prep []Record, r Record, want error) {
		t.Helper()
		s := baseState(t)
		for i, p := range append([]Record{topicRec("t", 1, 1, 1, 2)}, prep...) {
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
		if !sameExceptApplied(t, before, s) {
			t.Fatalf("%v: rejected record changed the state", r.Type)
		}
	}
	start := reassignRec(0, 1, ids(2, 3, 1), ids(3), ids(1), ids(1, 2))
	f(nil, start, nil)
	f(nil, reassignRec(1, 1, ids(2, 3, 1), ids(3), ids(1), ids(1, 2)), kerr.InvalidUpdateVersion)
	f(nil, reassignRec(0, 1, ids(2, 3, 1), ids(3), ids(1), ids(1, 2, 3)), kerr.InvalidRequest)           // 3 joins the ISR
	f(nil, reassignRec(0, 1, ids(2, 3, 1), ids(3, 3), ids(1), ids(1, 2)), kerr.InvalidReplicaAssignment) // 3 twice
	f(nil, reassignRec(0, 1, ids(2, 3, 1), ids(3), ids(3), ids(1, 2)), kerr.InvalidReplicaAssignment)    // adding and removing
	f(nil, reassignRec(0, 1, ids(2, 3, 1), ids(4), ids(1), ids(1, 2)), kerr.InvalidReplicaAssignment)    // 4 not a replica
	f(nil, reassignRec(0, 1, ids(2, 1), nil, ids(2, 1), ids(1, 2)), kerr.InvalidReplicaAssignment)       // no target left
	f(nil, reassignRec(0, 1, ids(2, 9, 1), ids(9), ids(1), ids(1, 2)), kerr.InvalidReplicaAssignment)    // unregistered
	f(nil, reassignRec(0, 3, ids(2, 3, 1), ids(3), ids(1), ids(1, 2)), kerr.InvalidRequest)              // leader outside ISR
	f(nil, reassignRec(0, 1, ids(1, 2), nil, nil, ids(1, 2)), ErrInvalidRecord)                          // no change
	// Apply checks structure, not when the controller may complete: replicas 2,3 with only 2 in sync is valid.
	f([]Record{start}, reassignRec(1, 2, ids(2, 3), nil, nil, ids(2)), nil)
	// Unregistration: only fenced brokers holding no replica, at their current epoch.
	unreg := func(id int32, epoch int64) Record {
		return Record{Type: TypeUnregisterBroker, UnregisterBroker: &UnregisterBroker{ID: id, Epoch: epoch}}
	}
	fence3 := Record{Type: TypeFenceBroker, FenceBroker: &FenceBroker{ID: 3, Epoch: 3}}
	f(nil, unreg(3, 3), kerr.InvalidRequest) // unfenced
	f([]Record{fence3}, unreg(3, 2), kerr.StaleBrokerEpoch)
	f([]Record{fence3}, unreg(7, 7), kerr.BrokerIDNotRegistered)
	f([]Record{fence3}, unreg(3, 3), nil)
	f([]Record{start, fence3}, unreg(3, 3), kerr.InvalidRequest) // a replica being added counts
}

// TestReassignSnapshotAndCodec: a reassignment in progress survives the record codec and a snapshot round trip,
// and a snapshot whose reassignment does not fit its replicas is refused.
func TestReassignSnapshotAndCodec(t *testing.T) {
	s := baseState(t)
	start := reassignRec(0, 1, ids(2, 3, 1), ids(3), ids(1), ids(1, 2))
	for i, r := range []Record{topicRec("t", 1, 1, 1, 2), start} {
		b, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := DecodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(dec, uint64(7+i)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	r, err := UnmarshalSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	p := r.Topics["t"].Partitions[0]
	if !slices.Equal(p.AddingReplicas, ids(3)) || !slices.Equal(p.RemovingReplicas, ids(1)) || !slices.Equal(p.Replicas, ids(2, 3, 1)) {
		t.Fatalf("restored partition %+v", p)
	}
	if b2, _ := r.MarshalSnapshot(); !bytes.Equal(b, b2) {
		t.Fatal("snapshot round trip differs")
	}
	if got := ListReassignments(r, nil); len(got) != 1 || got[0].Topic != "t" {
		t.Fatalf("restored reassignments %+v", got)
	}
	bad := strings.Replace(string(b), `"addingReplicas":[3]`, `"addingReplicas":[5]`, 1)
	if bad == string(b) {
		t.Fatalf("snapshot has no addingReplicas field to corrupt: %s", b)
	}
	if _, err := UnmarshalSnapshot([]byte(bad)); err == nil {
		t.Fatal("snapshot adding a non-replica accepted")
	}
	// Completing clears the fields: the state encodes as one that never had a reassignment.
	if err := s.Apply(reassignRec(1, 2, ids(2, 3), nil, nil, ids(2)), 9); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.MarshalSnapshot(); bytes.Contains(b, []byte("Replicas\":[]")) || bytes.Contains(b, []byte("adding")) {
		t.Fatalf("completed reassignment left fields behind: %s", b)
	}
}

// TestDecideReassignDuringReassignment: a new target while one is in progress starts from the original replicas,
// so naming the same target again changes nothing, going back to the original completes at once, and a replica
// the first target was adding leaves when the new one does not name it.
func TestDecideReassignDuringReassignment(t *testing.T) {
	s := baseState(t)
	if err := s.Apply(topicRec("t", 1, 1, 1), 7); err != nil {
		t.Fatal(err)
	}
	idx := uint64(8)
	f := func(target []int32, want *ReassignPartition) {
		t.Helper()
		r, err := DecideReassign(s, s.Topics["t"], 0, target, true)
		if err != nil {
			t.Fatalf("DecideReassign(%v): %v", target, err)
		}
		if want == nil || r == nil {
			if want != r {
				t.Fatalf("DecideReassign(%v) = %+v, want %+v", target, r, want)
			}
			return
		}
		want.Topic, want.ID, want.PartitionEpoch = "t", TopicID{1}, s.Topics["t"].Partitions[0].PartitionEpoch
		if !slices.Equal(r.Replicas, want.Replicas) || !slices.Equal(r.Adding, want.Adding) || !slices.Equal(r.Removing, want.Removing) ||
			!slices.Equal(r.ISR, want.ISR) || r.Leader != want.Leader || r.PartitionEpoch != want.PartitionEpoch {
			t.Fatalf("DecideReassign(%v) = %+v, want %+v", target, r, want)
		}
		if err := s.Apply(Record{Type: TypeReassignPartition, ReassignPartition: r}, idx); err != nil {
			t.Fatal(err)
		}
		idx++
	}
	f(ids(2, 3), &ReassignPartition{Replicas: ids(2, 3, 1), Adding: ids(2, 3), Removing: ids(1), ISR: ids(1), Leader: 1})
	f(ids(2, 3), nil) // as it is
	f(ids(1), &ReassignPartition{Replicas: ids(1), ISR: ids(1), Leader: 1})
	f(ids(2, 3), &ReassignPartition{Replicas: ids(2, 3, 1), Adding: ids(2, 3), Removing: ids(1), ISR: ids(1), Leader: 1})
	f(ids(3), &ReassignPartition{Replicas: ids(3, 1), Adding: ids(3), Removing: ids(1), ISR: ids(1), Leader: 1}) // 2 leaves
	if got := ListReassignments(s, map[string][]int32{"t": {0, 0, 5}, "nope": {0}}); len(got) != 1 ||
		!slices.Equal(got[0].Replicas, ids(3, 1)) || !slices.Equal(got[0].Adding, ids(3)) || !slices.Equal(got[0].Removing, ids(1)) {
		t.Fatalf("ListReassignments: %+v", got)
	}
	if got := ListReassignments(s, map[string][]int32{}); len(got) != 0 {
		t.Fatalf("ListReassignments of no topic: %+v", got)
	}
	// The completion waits for 3, the replica being added, to be in sync.
	if got := ReassignCompletions(s); len(got) != 0 {
		t.Fatalf("completions before 3 is in sync: %+v", got)
	}
	if err := s.Apply(Record{Type: TypeChangePartition, ChangePartition: &ChangePartition{Topic: "t", ID: TopicID{1},
		PartitionEpoch: s.Topics["t"].Partitions[0].PartitionEpoch, Leader: 1, ISR: ids(1, 3)}}, idx); err != nil {
		t.Fatal(err)
	}
	if got := ReassignCompletions(s); len(got) != 1 || !slices.Equal(got[0].Replicas, ids(3)) || got[0].Leader != 3 || !slices.Equal(got[0].ISR, ids(3)) {
		t.Fatalf("completions: %+v", got)
	}
}
