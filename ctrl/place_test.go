package ctrl

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func brokersOn(racks ...string) []PlaceBroker {
	out := make([]PlaceBroker, len(racks))
	for i, r := range racks {
		out[i] = PlaceBroker{ID: int32(i), Rack: r}
	}
	return out
}

func TestPlaceExact(t *testing.T) {
	f := func(req PlaceRequest, want string) {
		t.Helper()
		got, err := Place(req)
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprint(got); s != want {
			t.Fatalf("Place(%+v) = %s, want %s", req, s, want)
		}
	}
	// Kafka's rack-unaware example (AdminUtils docs): 5 brokers, 10 partitions, RF 3, start 0, shift 0.
	f(PlaceRequest{Brokers: brokersOn("", "", "", "", ""), Partitions: 10, RF: 3},
		"[[0 1 2] [1 2 3] [2 3 4] [3 4 0] [4 0 1] [0 2 3] [1 3 4] [2 4 0] [3 0 1] [4 1 2]]")
	// Kafka's rack-aware example: racks a:0,3 b:1 c:2,4... here a=0,1 b=2 c=3,4 alternates to 0,2,3,1,4.
	f(PlaceRequest{Brokers: brokersOn("a", "a", "b", "c", "c"), Partitions: 5, RF: 3},
		"[[0 2 3] [2 3 1] [3 1 2] [1 4 2] [4 0 2]]") // worked by hand from Kafka's algorithm
	// Adding partitions continues the pattern from FirstPartition.
	f(PlaceRequest{Brokers: brokersOn("", "", ""), Partitions: 2, RF: 2, FirstPartition: 3},
		"[[0 2] [1 0]]")
}

func TestPlaceProperties(t *testing.T) {
	// evenReplicas: racks are equally sized, so replicas (not just leaders) must spread evenly too. With uneven
	// racks Kafka's algorithm favours rack diversity, and a broker alone on its rack carries more replicas.
	f := func(racks []string, parts, rf int, evenReplicas bool) {
		t.Helper()
		bs := brokersOn(racks...)
		rackOf := map[int32]string{}
		distinct := map[string]bool{}
		for _, b := range bs {
			rackOf[b.ID], distinct[b.Rack] = b.Rack, true
		}
		for start := 0; start < len(bs); start++ {
			got, err := Place(PlaceRequest{Brokers: bs, Partitions: parts, RF: rf, StartIndex: start, Shift: start * 7 % len(bs)})
			if err != nil {
				t.Fatal(err)
			}
			leaders := map[int32]int{}
			replicas := map[int32]int{}
			for p, rs := range got {
				if len(rs) != rf {
					t.Fatalf("partition %d: %v, want %d replicas", p, rs, rf)
				}
				seen := map[int32]bool{}
				rk := map[string]bool{}
				for _, r := range rs {
					if seen[r] {
						t.Fatalf("partition %d: broker %d twice in %v", p, r, rs)
					}
					seen[r], rk[rackOf[r]] = true, true
					replicas[r]++
				}
				if want := min(rf, len(distinct)); len(rk) != want {
					t.Fatalf("racks %v partition %d: %v spans %d racks, want %d", racks, p, rs, len(rk), want)
				}
				leaders[rs[0]]++
			}
			spread(t, "leaders", leaders, len(bs), parts)
			if evenReplicas {
				spread(t, "replicas", replicas, len(bs), parts*rf)
			}
		}
	}
	f([]string{"", "", ""}, 9, 3, true)
	f([]string{"", "", "", "", ""}, 10, 3, true)
	f([]string{"a", "a", "b", "b", "c", "c"}, 12, 3, true)
	f([]string{"a", "b", "c", "a", "b", "c"}, 30, 2, true)
	f([]string{"a", "a", "a", "b"}, 8, 2, false)
	f([]string{"a", "", "b"}, 6, 3, true) // a broker with no rack is on rack ""
}

// spread fails unless counts over n brokers differ by at most one (every broker counted, total as given).
func spread(t *testing.T, what string, counts map[int32]int, n, total int) {
	t.Helper()
	lo, hi := total/n, (total+n-1)/n
	for id := int32(0); id < int32(n); id++ {
		if c := counts[id]; c < lo || c > hi {
			t.Fatalf("%s uneven: broker %d has %d, want %d..%d (%v)", what, id, c, lo, hi, counts)
		}
	}
}

func TestPlaceErrors(t *testing.T) {
	f := func(req PlaceRequest, want *kerr.Error) {
		t.Helper()
		if _, err := Place(req); !errors.Is(err, want) {
			t.Fatalf("Place(%+v): %v, want %v", req, err, want)
		}
	}
	f(PlaceRequest{Brokers: brokersOn("", ""), Partitions: 1, RF: 3}, kerr.InvalidReplicationFactor)
	f(PlaceRequest{Brokers: brokersOn("", ""), Partitions: 1, RF: 0}, kerr.InvalidReplicationFactor)
	f(PlaceRequest{Brokers: brokersOn("", ""), Partitions: 0, RF: 1}, kerr.InvalidPartitions)
	f(PlaceRequest{Brokers: nil, Partitions: 1, RF: 1}, kerr.InvalidReplicationFactor)
}

func TestRackAlternated(t *testing.T) {
	got := rackAlternated([]PlaceBroker{{0, "a"}, {1, "a"}, {2, "b"}, {3, "c"}, {4, "c"}, {5, "a"}})
	ids := make([]int32, len(got))
	for i, b := range got {
		ids[i] = b.ID
	}
	if want := []int32{0, 2, 3, 1, 4, 5}; !slices.Equal(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
}
