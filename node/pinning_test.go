package node

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/tuning"
)

// fakeSys writes a /sys tree with the given NUMA nodes (node id -> cpulist)
// and cpu online/present lists, and returns a Host reading it. It has no
// mounts and no NICs, so the disk's and NIC's nodes are unknown.
func fakeSys(t testing.TB, online, present string, nodes map[int]string) *tuning.Host {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"sys/devices/system/cpu/online":  online,
		"sys/devices/system/cpu/present": present,
	}
	for id, cpus := range nodes {
		files[fmt.Sprintf("sys/devices/system/node/node%d/cpulist", id)] = cpus
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tuning.NewHost(root)
}

func cpuRange(lo, hi int) []int {
	var out []int
	for c := lo; c <= hi; c++ {
		out = append(out, c)
	}
	return out
}

// TestPlanPinning: fake topologies in, the CPU of each loop, the committers
// (node and CPUs, pinned or not) and each new partition's shard and
// committer out.
func TestPlanPinning(t *testing.T) {
	oneNode2 := fakeSys(t, "0-1", "0-1", map[int]string{0: "0-1"})
	twoNode8 := fakeSys(t, "0-15", "0-15", map[int]string{0: "0-7", 1: "8-15"})
	offline := fakeSys(t, "0,3-8,10-15", "0-15", map[int]string{0: "0-7", 1: "8-15"})
	noNUMA := fakeSys(t, "0-3", "0-3", nil) // no node directory: one node 0

	type committer struct {
		node int
		cpus string
	}
	f := func(name string, h *tuning.Host, allowed []int, loops, disk int,
		wantLoopCPUs string, wantCommitters []committer, wantPinCommitters bool,
		parts int, wantShards, wantCommitterOf []int) {
		t.Helper()
		topo, err := h.ReadTopology()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p, err := planPinning(topo, allowed, loops, disk, -1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var loopCPUs []string
		for i := range loops {
			s := p.plan.Shards[i]
			loopCPUs = append(loopCPUs, tuning.FormatCPUList(s.CPUs))
		}
		if got := strings.Join(loopCPUs, " "); got != wantLoopCPUs {
			t.Errorf("%s: loop CPUs %q, want %q", name, got, wantLoopCPUs)
		}
		var gotC []committer
		for i, n := range p.nodes {
			gotC = append(gotC, committer{n, tuning.FormatCPUList(p.cpus[i])})
		}
		if !slices.Equal(gotC, wantCommitters) || p.pinCommitters != wantPinCommitters {
			t.Errorf("%s: committers %v (pinned %v), want %v (pinned %v)", name, gotC, p.pinCommitters,
				wantCommitters, wantPinCommitters)
		}
		var shards, committers []int
		for i := range parts {
			committers = append(committers, p.committerFor("t", int32(i)))
			shards = append(shards, p.shardOf("t", int32(i)))
		}
		if !slices.Equal(shards, wantShards) || !slices.Equal(committers, wantCommitterOf) {
			t.Errorf("%s: partitions on shards %v committers %v, want %v and %v", name, shards, committers,
				wantShards, wantCommitterOf)
		}
	}
	all16 := cpuRange(0, 15)

	f("1 node x 2, the committer would get every CPU: not pinned", oneNode2, []int{0, 1}, 2, -1,
		"0 1", []committer{{0, "0-1"}}, false,
		4, []int{0, 1, 0, 1}, []int{0, 0, 0, 0})
	f("1 node x 2 in a cpuset of CPU 1: both loops there", oneNode2, []int{1}, 2, -1,
		"1 1", []committer{{0, "1"}}, false,
		2, []int{0, 1}, []int{0, 0})
	f("no NUMA in /sys: one node, 3 loops on 4 CPUs, committer pinned to the loops' CPUs", noNUMA, cpuRange(0, 3), 3, -1,
		"0 1 2", []committer{{0, "0-2"}}, true,
		4, []int{0, 1, 2, 0}, []int{0, 0, 0, 0})
	f("2 x 8, 4 loops, disk on node 1: everything on node 1", twoNode8, all16, 4, 1,
		"8 9 10 11", []committer{{1, "8-11"}}, true,
		5, []int{0, 1, 2, 3, 0}, []int{0, 0, 0, 0, 0})
	f("2 x 8, 16 loops, disk node unknown: loops alternate nodes, partitions both committers", twoNode8, all16, 16, -1,
		"0 8 1 9 2 10 3 11 4 12 5 13 6 14 7 15", []committer{{0, "0-7"}, {1, "8-15"}}, true,
		4, []int{0, 1, 2, 3}, []int{0, 1, 0, 1})
	f("2 x 8, 16 loops, disk on node 1: partitions only on node 1's shards", twoNode8, all16, 16, 1,
		"8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7", []committer{{1, "8-15"}, {0, "0-7"}}, true,
		9, []int{0, 1, 2, 3, 4, 5, 6, 7, 0}, []int{0, 0, 0, 0, 0, 0, 0, 0, 0})
	f("2 x 8 with CPUs 1, 2, 9 offline, disk on node 0", offline, all16, 13, 0,
		"0 3 4 5 6 7 8 10 11 12 13 14 15", []committer{{0, "0,3-7"}, {1, "8,10-15"}}, true,
		7, []int{0, 1, 2, 3, 4, 5, 0}, []int{0, 0, 0, 0, 0, 0, 0})
	f("2 x 8 in a cpuset of 2,3,10, disk unknown", twoNode8, []int{2, 3, 10}, 3, -1,
		"2 10 3", []committer{{0, "2-3"}, {1, "10"}}, true,
		3, []int{0, 1, 2}, []int{0, 1, 0})

	// A partition keeps its shard when asked again (reopen), and a
	// deleted one frees its slot for the next.
	topo, _ := twoNode8.ReadTopology()
	p, _ := planPinning(topo, all16, 2, -1, -1)
	for range 2 {
		if c := p.committerFor("a", 0); c != 0 {
			t.Errorf("a-0 on committer %d", c)
		}
	}
	p.committerFor("a", 1)
	p.forget("a", 0)
	if s := p.shardOf("a", 0); s != -1 {
		t.Errorf("forgotten partition still on shard %d", s)
	}
	if c := p.committerFor("b", 0); c != 0 || p.perShard[0] != 1 || p.perShard[1] != 1 {
		t.Errorf("after forgetting a-0, b-0 went to committer %d; per shard %v", c, p.perShard)
	}

	if _, err := planPinning(topo, []int{40}, 2, -1, -1); err == nil {
		t.Error("no allowed CPU in the topology: no error")
	}
}
