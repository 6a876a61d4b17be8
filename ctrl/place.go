package ctrl

import (
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Replica placement, modelled on Kafka's AdminUtils.assignReplicasToBrokers: leaders go round-robin over the
// brokers from a start index, followers follow at a shift that grows every full round so replica sets vary, and
// with racks the broker list alternates racks so consecutive picks land on different racks and every partition's
// replicas sit on distinct racks when there are at least RF racks. A broker without a rack is on rack "" (as
// KRaft treats a missing rack), so mixing racked and unracked brokers is allowed.

// PlaceBroker is a placement candidate.
type PlaceBroker struct {
	ID   int32
	Rack string
}

// PlaceRequest is the input to Place. StartIndex and Shift are Kafka's random start index and replica shift; the
// caller draws them (the active controller draws at random), which keeps Place itself pure and testable.
type PlaceRequest struct {
	Brokers        []PlaceBroker // candidates: the unfenced brokers
	Partitions     int           // how many partitions to place
	RF             int           // replication factor
	FirstPartition int           // number of the first partition placed (non-zero when adding partitions)
	StartIndex     int
	Shift          int
}

// Place returns one replica list per partition, leader (preferred replica) first. It is pure and safe for
// concurrent use. Errors wrap INVALID_PARTITIONS or INVALID_REPLICATION_FACTOR.
func Place(req PlaceRequest) ([][]int32, error) {
	n := len(req.Brokers)
	if req.Partitions <= 0 {
		return nil, fmt.Errorf("%w: %d partitions requested", kerr.InvalidPartitions, req.Partitions)
	}
	if req.RF <= 0 || req.RF > n {
		return nil, fmt.Errorf("%w: replication factor %d with %d available brokers", kerr.InvalidReplicationFactor, req.RF, n)
	}
	if req.StartIndex < 0 || req.Shift < 0 || req.FirstPartition < 0 {
		return nil, fmt.Errorf("%w: negative start index, shift or first partition", kerr.InvalidRequest)
	}
	racks := map[string]bool{}
	for _, b := range req.Brokers {
		racks[b.Rack] = true
	}
	arranged := rackAlternated(req.Brokers)
	numRacks := len(racks)
	out := make([][]int32, 0, req.Partitions)
	shift := req.Shift
	for p := req.FirstPartition; p < req.FirstPartition+req.Partitions; p++ {
		if p > 0 && p%n == 0 {
			shift++
		}
		first := (p + req.StartIndex) % n
		if numRacks == 1 {
			out = append(out, placeUnaware(arranged, first, shift, req.RF))
		} else {
			out = append(out, placeRackAware(arranged, first, shift, req.RF, numRacks))
		}
	}
	return out, nil
}

// followerIndex is Kafka's replicaIndex: the j-th follower sits 1 + (shift+j) mod (n-1) places after the leader,
// so it never lands on the leader.
func followerIndex(first, shift, j, n int) int {
	return (first + 1 + (shift+j)%(n-1)) % n
}

func placeUnaware(bs []PlaceBroker, first, shift, rf int) []int32 {
	out := []int32{bs[first].ID}
	for j := 0; j < rf-1; j++ {
		out = append(out, bs[followerIndex(first, shift, j, len(bs))].ID)
	}
	return out
}

func placeRackAware(bs []PlaceBroker, first, shift, rf, numRacks int) []int32 {
	n := len(bs)
	leader := bs[first]
	out := []int32{leader.ID}
	usedRacks := map[string]bool{leader.Rack: true}
	used := map[int32]bool{leader.ID: true}
	k := 0
	for len(out) < rf {
		b := bs[followerIndex(first, shift*numRacks, k, n)]
		k++
		// Skip a rack already holding a replica until every rack has one, and a broker already used until every
		// broker is (the latter cannot happen while rf <= n, but keeps the loop's exit obvious).
		if (usedRacks[b.Rack] && len(usedRacks) < numRacks) || (used[b.ID] && len(used) < n) {
			continue
		}
		out = append(out, b.ID)
		usedRacks[b.Rack], used[b.ID] = true, true
	}
	return out
}

// rackAlternated orders brokers rack by rack in turn (racks sorted, brokers by id within a rack): with racks a,b
// and brokers a1,a2,b1 it is a1,b1,a2. Without racks it is simply the brokers by id.
func rackAlternated(bs []PlaceBroker) []PlaceBroker {
	byRack := map[string][]PlaceBroker{}
	for _, b := range bs {
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	var racks []string
	for r, l := range byRack {
		racks = append(racks, r)
		sort.Slice(l, func(i, j int) bool { return l[i].ID < l[j].ID })
	}
	slices.Sort(racks)
	out := make([]PlaceBroker, 0, len(bs))
	for i := 0; len(out) < len(bs); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}

// PlaceBrokers returns the placement candidates of a state: its unfenced brokers.
func PlaceBrokers(s *State) []PlaceBroker {
	var out []PlaceBroker
	for _, b := range s.LiveBrokers() {
		out = append(out, PlaceBroker{ID: b.ID, Rack: b.Rack})
	}
	return out
}
