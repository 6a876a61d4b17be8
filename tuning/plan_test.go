package tuning

import (
	"slices"
	"sync"
	"testing"
)

// Fake topologies for the mapping tests.
var (
	oneNode2 = Topology{Nodes: []Node{{ID: 0, CPUs: []int{0, 1}}}}
	twoNode8 = Topology{Nodes: []Node{
		{ID: 0, CPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}, Distance: []int{10, 21}},
		{ID: 1, CPUs: []int{8, 9, 10, 11, 12, 13, 14, 15}, Distance: []int{21, 10}},
	}}
	// 2 x 8 with CPUs 1, 2 and 9 offline.
	twoNodeOffline = Topology{Nodes: []Node{
		{ID: 0, CPUs: []int{0, 3, 4, 5, 6, 7}},
		{ID: 1, CPUs: []int{8, 10, 11, 12, 13, 14, 15}},
	}, Offline: []int{1, 2, 9}}
)

func TestNewPlan(t *testing.T) {
	f := func(name string, topo Topology, shards, disk, nic int, wantCPUs []int, wantSummary string) {
		t.Helper()
		p, err := NewPlan(topo, shards, disk, nic)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var cpus []int
		for i, s := range p.Shards {
			if s.ID != i || len(s.CPUs) != 1 || topo.NodeOf(s.CPUs[0]) != s.Node {
				t.Errorf("%s: bad shard %+v", name, s)
			}
			cpus = append(cpus, s.CPUs...)
		}
		if !slices.Equal(cpus, wantCPUs) {
			t.Errorf("%s: shard CPUs %v, want %v", name, cpus, wantCPUs)
		}
		if got := p.Summary(); got != wantSummary {
			t.Errorf("%s: summary %q, want %q", name, got, wantSummary)
		}
	}
	f("1 node x 2, default", oneNode2, 0, -1, -1, []int{0, 1}, "node0: shards 0-1 on CPUs 0-1")
	f("1 node x 2, 3 shards wrap", oneNode2, 3, 0, -1, []int{0, 1, 0}, "node0: shards 0-2 on CPUs 0-1")
	f("2x8 default, disk node1: node1 first", twoNode8, 0, 1, -1,
		[]int{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7},
		"node1: shards 0-7 on CPUs 8-15; node0: shards 8-15 on CPUs 0-7")
	f("2x8, 4 shards, disk node1: all on node1", twoNode8, 4, 1, 0, []int{8, 9, 10, 11},
		"node1: shards 0-3 on CPUs 8-11")
	f("2x8, 4 shards, disk unknown, NIC node0", twoNode8, 4, -1, 0, []int{0, 1, 2, 3},
		"node0: shards 0-3 on CPUs 0-3")
	f("2x8, 4 shards, nothing known: alternate nodes", twoNode8, 4, -1, -1, []int{0, 8, 1, 9},
		"node0: shards 0,2 on CPUs 0-1; node1: shards 1,3 on CPUs 8-9")
	f("2x8, disk on a node this host lacks", twoNode8, 2, 5, -1, []int{0, 8},
		"node0: shards 0 on CPUs 0; node1: shards 1 on CPUs 8")
	f("offline CPUs never get a shard", twoNodeOffline, 0, 0, -1,
		[]int{0, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15},
		"node0: shards 0-5 on CPUs 0,3-7; node1: shards 6-12 on CPUs 8,10-15")
	f("offline, 8 shards, disk node1 spills to node0", twoNodeOffline, 8, 1, -1,
		[]int{8, 10, 11, 12, 13, 14, 15, 0},
		"node1: shards 0-6 on CPUs 8,10-15; node0: shards 7 on CPUs 0")

	if _, err := NewPlan(Topology{}, 0, -1, -1); err == nil {
		t.Error("empty topology: want error")
	}
}

func TestAssignPartitions(t *testing.T) {
	f := func(name string, topo Topology, shards, disk, nic int, parts []int, want []int) {
		t.Helper()
		p, err := NewPlan(topo, shards, disk, nic)
		if err != nil {
			t.Fatal(err)
		}
		got := AssignPartitions(p, parts)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	rep := func(n, times int) []int {
		out := make([]int, times)
		for i := range out {
			out[i] = n
		}
		return out
	}
	f("1 node: round-robin", oneNode2, 0, -1, -1, rep(-1, 5), []int{0, 1, 0, 1, 0})
	f("1 node: disk on node0 is the same", oneNode2, 0, 0, -1, rep(0, 3), []int{0, 1, 0})
	// Default plan with the disk on node 1: shards 0-7 are node 1's.
	f("2x8: disk node1 partitions stay on node1, balanced", twoNode8, 0, 1, -1, rep(1, 10),
		[]int{0, 1, 2, 3, 4, 5, 6, 7, 0, 1})
	f("2x8: node0 disk (JBOD) goes to node0 shards", twoNode8, 0, 1, -1, []int{0, 1, 0},
		[]int{8, 0, 9})
	f("2x8: unknown disk, known NIC node0", twoNode8, 0, -1, 0, rep(-1, 3), []int{0, 1, 2})
	f("2x8: unknown everything: round-robin over all", twoNode8, 4, -1, -1, rep(-1, 6),
		[]int{0, 1, 2, 3, 0, 1})
	// 4 shards all on node1 (disk node1); a partition on a node0 disk has
	// no local shard and goes to the nearest node that has one.
	f("2x8: no shard on the disk's node -> nearest", twoNode8, 4, 1, -1, rep(0, 5),
		[]int{0, 1, 2, 3, 0})
	f("offline CPUs, disk node0", twoNodeOffline, 0, 0, -1, rep(0, 7),
		[]int{0, 1, 2, 3, 4, 5, 0})
}

func TestBalancerReleaseAndConcurrency(t *testing.T) {
	p, err := NewPlan(twoNode8, 0, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBalancer(p)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				s := b.Assign(1)
				mu.Lock()
				counts[s]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for s := range 16 {
		want := 0
		if s < 8 {
			want = 10
		}
		if counts[s] != want {
			t.Errorf("shard %d got %d partitions, want %d (all %v)", s, counts[s], want, counts)
		}
	}
	b.Release(5)
	b.Release(99) // unknown shard: ignored, no panic
	if s := b.Assign(1); s != 5 {
		t.Errorf("after release of shard 5 the next partition went to %d", s)
	}
}

func TestParsePinningMode(t *testing.T) {
	for in, want := range map[string]PinningMode{"": PinningAuto, "auto": PinningAuto, " OFF ": PinningOff} {
		if got, err := ParsePinningMode(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParsePinningMode("on"); err == nil {
		t.Error("on accepted")
	}
}
