package ctrl

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestValidateAssignment(t *testing.T) {
	s := NewState()
	for id := int32(1); id <= 4; id++ {
		s.Brokers[id] = &Broker{ID: id, Fenced: id == 4}
	}
	ok := func(assign [][]int32, rf int, want ...PartitionInit) {
		t.Helper()
		got, err := ValidateAssignment(s, assign, rf)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ValidateAssignment(%v, %d) = %+v, %v; want %+v", assign, rf, got, err, want)
		}
	}
	bad := func(assign [][]int32, rf int, want *kerr.Error) {
		t.Helper()
		got, err := ValidateAssignment(s, assign, rf)
		if !errors.Is(err, want) || got != nil {
			t.Fatalf("ValidateAssignment(%v, %d) = %+v, %v; want %v", assign, rf, got, err, want)
		}
	}
	ok([][]int32{{2, 1, 3}, {3, 2, 1}}, 0,
		PartitionInit{Replicas: []int32{2, 1, 3}, ISR: []int32{2, 1, 3}, Leader: 2},
		PartitionInit{Replicas: []int32{3, 2, 1}, ISR: []int32{3, 2, 1}, Leader: 3})
	// A fenced replica starts outside the ISR; the first live one leads.
	ok([][]int32{{4, 1}}, 2, PartitionInit{Replicas: []int32{4, 1}, ISR: []int32{1}, Leader: 1})
	ok([][]int32{{1}}, 1, PartitionInit{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})

	ira := kerr.InvalidReplicaAssignment
	bad(nil, 0, ira)
	bad([][]int32{{}}, 0, ira)
	bad([][]int32{{1, 2}, {}}, 0, ira)
	bad([][]int32{{1, 1}}, 0, ira)
	bad([][]int32{{1, 5}}, 0, ira)      // not registered
	bad([][]int32{{-1}}, 0, ira)        // not a broker id
	bad([][]int32{{4}}, 0, ira)         // every replica fenced
	bad([][]int32{{1, 2}, {3}}, 0, ira) // lengths differ
	bad([][]int32{{1, 2}}, 3, ira)      // not the topic's replication factor
	bad(make([][]int32, MaxNewPartitions+1), 0, kerr.InvalidPartitions)
}

// CreateTopicAssigned / CreatePartitionsAssigned propose exactly the assignment, and Apply accepts it.
func TestCreateAssigned(t *testing.T) {
	c, n, epochs := adminCluster(t) // brokers 0..2, topic "t" of 2 partitions, RF 2
	create := func(name string, assign [][]int32) error {
		return await(t, c, func(done func(error)) error {
			return n.CreateTopicAssigned(name, assign, map[string]string{"k": "v"}, func(_ TopicID, err error) { done(err) })
		})
	}
	if err := create("a", [][]int32{{2, 0}, {1, 2}, {0, 1}}); err != nil {
		t.Fatal(err)
	}
	n.Read(func(s *State) {
		ta := s.Topics["a"]
		want := [][]int32{{2, 0}, {1, 2}, {0, 1}}
		for i, p := range ta.Partitions {
			if !reflect.DeepEqual(p.Replicas, want[i]) || !reflect.DeepEqual(p.ISR, want[i]) || p.Leader != want[i][0] {
				t.Fatalf("a-%d: %+v, want replicas = ISR = %v led by %d", i, p, want[i], want[i][0])
			}
		}
		if ta.Configs["k"] != "v" {
			t.Fatalf("configs %v", ta.Configs)
		}
	})
	f := func(err error, want *kerr.Error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
	}
	f(create("a", [][]int32{{0}}), kerr.TopicAlreadyExists)
	f(create("bad name", [][]int32{{0}}), kerr.InvalidTopicException)
	f(create("b", [][]int32{{0, 7}}), kerr.InvalidReplicaAssignment)

	grow := func(name string, total int, assign [][]int32) error {
		return await(t, c, func(done func(error)) error { return n.CreatePartitionsAssigned(name, total, assign, done) })
	}
	if err := grow("a", 4, [][]int32{{1, 0}}); err != nil {
		t.Fatal(err)
	}
	if p := partition(n, "a", 3); !reflect.DeepEqual(p.Replicas, []int32{1, 0}) || p.Leader != 1 {
		t.Fatalf("a-3: %+v", p)
	}
	f(grow("a", 4, [][]int32{{1, 0}}), kerr.InvalidPartitions)
	f(grow("a", 6, [][]int32{{1, 0}}), kerr.InvalidReplicaAssignment)    // one list for two partitions
	f(grow("a", 5, [][]int32{{1, 0, 2}}), kerr.InvalidReplicaAssignment) // RF 3 on an RF 2 topic
	f(grow("a", 5, [][]int32{{1, 1}}), kerr.InvalidReplicaAssignment)
	f(grow("nope", 5, [][]int32{{1, 0}}), kerr.UnknownTopicOrPartition)

	// With broker 2 fenced: allowed as a replica outside the ISR, refused alone.
	n.BrokerDisconnected(2, epochs[2])
	c.tick(2)
	if err := create("f", [][]int32{{2, 0}}); err != nil {
		t.Fatal(err)
	}
	if p := partition(n, "f", 0); !reflect.DeepEqual(p.ISR, []int32{0}) || p.Leader != 0 {
		t.Fatalf("f-0 with broker 2 fenced: %+v, want ISR [0] led by 0", p)
	}
	f(create("g", [][]int32{{2}}), kerr.InvalidReplicaAssignment)
	c.converged()
}

// The assignment travels over the controller RPC (a broker that is not the active controller).
func TestNetRemoteAssigned(t *testing.T) {
	_, voters := startNetCluster(t, 1, nil)
	cl := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	defer cl.Close()
	for id := int32(0); id < 3; id++ {
		registerLive(t, cl, id)
	}
	ctx := ctxFor(t, 5*time.Second)
	if _, err := cl.CreateTopicAssigned(ctx, "t", [][]int32{{2, 1}, {0, 2}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreatePartitionsAssigned(ctx, "t", 3, [][]int32{{1, 0}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateTopicAssigned(ctx, "u", [][]int32{{0, 0}}, nil); !errors.Is(err, kerr.InvalidReplicaAssignment) {
		t.Fatalf("duplicate broker over the network: %v", err)
	}
	if err := cl.CreatePartitionsAssigned(ctx, "t", 5, [][]int32{{1, 0}}); !errors.Is(err, kerr.InvalidReplicaAssignment) {
		t.Fatalf("too few lists over the network: %v", err)
	}
	s, err := cl.FetchMetadata(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]int32
	for _, p := range s.Topics["t"].Partitions {
		got = append(got, p.Replicas)
	}
	if want := [][]int32{{2, 1}, {0, 2}, {1, 0}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("replicas %v, want %v", got, want)
	}
}
