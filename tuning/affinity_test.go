package tuning

import (
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRestrict(t *testing.T) {
	f := func(name string, topo Topology, allowed []int, want string, wantPlanCPUs []int) {
		t.Helper()
		r := topo.Restrict(allowed)
		if got := r.String(); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
		if len(r.Nodes) != len(topo.Nodes) {
			t.Errorf("%s: %d nodes, want all %d kept", name, len(r.Nodes), len(topo.Nodes))
		}
		p, err := NewPlan(r, 0, -1, -1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var cpus []int
		for _, s := range p.Shards {
			cpus = append(cpus, s.CPUs...)
		}
		if !slices.Equal(cpus, wantPlanCPUs) {
			t.Errorf("%s: plan CPUs %v, want %v", name, cpus, wantPlanCPUs)
		}
	}
	f("everything allowed", oneNode2, []int{0, 1}, "node0: 0-1", []int{0, 1})
	f("cpuset inside node 1", twoNode8, []int{9, 10}, "node0: no CPUs; node1: 9-10; offline: 0-8,11-15", []int{9, 10})
	f("cpuset across nodes, offline kept", twoNodeOffline, []int{0, 1, 8, 9, 10}, "node0: 0; node1: 8,10; offline: 1-7,9,11-15",
		[]int{0, 8, 10})
	// Distances survive, so a disk on the now CPU-less node 0 still finds
	// the nearest node with CPUs.
	r := twoNode8.Restrict([]int{12})
	if ids := r.NodesByDistance(0); !slices.Equal(ids, []int{1}) {
		t.Errorf("NodesByDistance from a CPU-less node: %v", ids)
	}
	if p, _ := NewPlan(r, 2, 0, -1); p.Shards[0].CPUs[0] != 12 || p.Shards[1].CPUs[0] != 12 {
		t.Errorf("plan with the disk on a CPU-less node: %+v", p.Shards)
	}
}

// TestThreadAffinity: another goroutine can read and change a locked
// thread's CPUs by thread id (what undoing a failed pinning does).
func TestThreadAffinity(t *testing.T) {
	allowed, err := AllowedCPUs()
	if err != nil || len(allowed) == 0 {
		t.Fatalf("AllowedCPUs: %v %v", allowed, err)
	}
	tidc, release := make(chan int), make(chan struct{})
	go func() {
		runtime.LockOSThread() // exits locked: the thread is discarded
		tidc <- unix.Gettid()
		<-release
	}()
	tid := <-tidc
	defer close(release)
	if err := SetThreadCPUs(tid, allowed[:1]); err != nil {
		t.Fatal(err)
	}
	if got, err := ThreadCPUs(tid); err != nil || !slices.Equal(got, allowed[:1]) {
		t.Errorf("after SetThreadCPUs(%d, %v): %v %v", tid, allowed[:1], got, err)
	}
	if err := SetThreadCPUs(tid, allowed); err != nil {
		t.Fatal(err)
	}
	if got, _ := ThreadCPUs(tid); !slices.Equal(got, allowed) {
		t.Errorf("back to %v: %v", allowed, got)
	}
	if err := SetThreadCPUs(tid, nil); err == nil {
		t.Error("empty CPU set accepted")
	}
	if _, err := ThreadCPUs(-5); err == nil {
		t.Error("ThreadCPUs(-5): no error")
	}
}
