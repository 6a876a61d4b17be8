package tuning

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// AllowedCPUs returns the CPUs the calling thread may run on
// (sched_getaffinity). A container's cpuset or a taskset narrows this below
// what /sys lists, and pinning to a CPU outside it fails with EINVAL, so a
// plan must be made from the topology restricted to it. Safe to call
// concurrently; it reads only the calling thread's mask.
func AllowedCPUs() ([]int, error) {
	return ThreadCPUs(0)
}

// ThreadCPUs returns the affinity of thread tid of this process (0: the
// calling thread), ascending. Safe to call concurrently.
func ThreadCPUs(tid int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		return nil, fmt.Errorf("tuning: sched_getaffinity(%d): %w", tid, err)
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// SetThreadCPUs restricts thread tid of this process (0: the calling
// thread) to cpus. Unlike PinCurrentThread it does not lock any goroutine
// to a thread: it is for changing a thread whose goroutine is already
// locked there, from another goroutine (undoing pinning after a failure).
// Safe to call concurrently.
func SetThreadCPUs(tid int, cpus []int) error {
	set, err := cpuSet(cpus)
	if err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(tid, &set); err != nil {
		return fmt.Errorf("tuning: sched_setaffinity(%d, %s): %w", tid, FormatCPUList(cpus), err)
	}
	return nil
}

func cpuSet(cpus []int) (unix.CPUSet, error) {
	var set unix.CPUSet
	if len(cpus) == 0 {
		return set, fmt.Errorf("tuning: pin to an empty CPU set")
	}
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return set, fmt.Errorf("tuning: cpu %d out of range", c)
		}
		set.Set(c)
	}
	return set, nil
}

// Restrict returns t with only the CPUs in allowed left on each node; the
// others are treated like offline CPUs (they are listed in Offline) since
// no thread of this process can run there. Nodes keep their IDs and
// distances even when left without CPUs, so disk and NIC placement still
// finds the nearest node that has some. Pure.
func (t Topology) Restrict(allowed []int) Topology {
	ok := make(map[int]bool, len(allowed))
	for _, c := range allowed {
		ok[c] = true
	}
	out := Topology{Offline: append([]int(nil), t.Offline...)}
	for _, n := range t.Nodes {
		m := Node{ID: n.ID, CPUs: []int{}, Distance: n.Distance}
		for _, c := range n.CPUs {
			if ok[c] {
				m.CPUs = append(m.CPUs, c)
			} else {
				out.Offline = append(out.Offline, c)
			}
		}
		out.Nodes = append(out.Nodes, m)
	}
	slices.Sort(out.Offline)
	return out
}
