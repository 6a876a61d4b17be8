package tuning

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Node is one NUMA node and the CPUs of it that are online.
type Node struct {
	ID   int   `json:"id"`
	CPUs []int `json:"cpus"` // online CPUs only, ascending; empty for memory-only nodes
	// Distance is this node's row of the SLIT table, indexed by node ID
	// (10 = local). Nil when the kernel does not expose it.
	Distance []int `json:"distance,omitempty"`
}

// Topology is the CPU/NUMA layout of a host as far as pinning cares:
// which online CPUs belong to which node. It is a plain value; share it
// freely between goroutines as long as nobody mutates the slices.
type Topology struct {
	Nodes   []Node `json:"nodes"`             // ascending by ID
	Offline []int  `json:"offline,omitempty"` // CPUs present but offline
}

// ReadTopology reads the layout from Root/sys/devices/system. Offline CPUs
// are dropped from their node (a thread pinned to one would never run). A
// host without /sys/devices/system/node (non-NUMA kernel, some containers)
// is one node 0 holding every online CPU. Safe to call concurrently.
func (h *Host) ReadTopology() (Topology, error) {
	online, err := h.onlineCPUs()
	if err != nil {
		return Topology{}, err
	}
	isOnline := make(map[int]bool, len(online))
	for _, c := range online {
		isOnline[c] = true
	}
	var t Topology
	if present, ok := h.read("/sys/devices/system/cpu/present"); ok {
		if cpus, err := ParseCPUList(present); err == nil {
			for _, c := range cpus {
				if !isOnline[c] {
					t.Offline = append(t.Offline, c)
				}
			}
		}
	}
	placed := map[int]bool{}
	for _, name := range h.list("/sys/devices/system/node", "node") {
		id, err := strconv.Atoi(strings.TrimPrefix(name, "node"))
		if err != nil {
			continue
		}
		dir := "/sys/devices/system/node/" + name
		n := Node{ID: id, CPUs: []int{}}
		if s, ok := h.read(dir + "/cpulist"); ok {
			cpus, err := ParseCPUList(s)
			if err != nil {
				return Topology{}, fmt.Errorf("%s/cpulist: %w", dir, err)
			}
			for _, c := range cpus {
				if isOnline[c] {
					n.CPUs = append(n.CPUs, c)
					placed[c] = true
				}
			}
		}
		if s, ok := h.read(dir + "/distance"); ok {
			for _, f := range strings.Fields(s) {
				d, err := strconv.Atoi(f)
				if err != nil {
					n.Distance = nil
					break
				}
				n.Distance = append(n.Distance, d)
			}
		}
		t.Nodes = append(t.Nodes, n)
	}
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].ID < t.Nodes[j].ID })
	if len(t.Nodes) == 0 {
		return Topology{Nodes: []Node{{ID: 0, CPUs: online}}, Offline: t.Offline}, nil
	}
	// An online CPU no node claims would otherwise never get a shard; give
	// it to the first node rather than lose it.
	for _, c := range online {
		if !placed[c] {
			t.Nodes[0].CPUs = append(t.Nodes[0].CPUs, c)
			sort.Ints(t.Nodes[0].CPUs)
		}
	}
	return t, nil
}

// onlineCPUs reads cpu/online, falling back to the cpuN directories (each
// with an optional "online" file; cpu0 often has none and cannot go
// offline).
func (h *Host) onlineCPUs() ([]int, error) {
	if s, ok := h.read("/sys/devices/system/cpu/online"); ok {
		return ParseCPUList(s)
	}
	var cpus []int
	for _, name := range h.list("/sys/devices/system/cpu", "cpu") {
		id, err := strconv.Atoi(strings.TrimPrefix(name, "cpu"))
		if err != nil {
			continue
		}
		if v, ok := h.readInt("/sys/devices/system/cpu/" + name + "/online"); ok && v == 0 {
			continue
		}
		cpus = append(cpus, id)
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("no online CPUs visible under %s", h.path("/sys/devices/system/cpu"))
	}
	sort.Ints(cpus)
	return cpus, nil
}

// OnlineCPUs returns every online CPU, ascending. Like all Topology
// methods it is pure and safe to call concurrently.
func (t Topology) OnlineCPUs() []int {
	var all []int
	for _, n := range t.Nodes {
		all = append(all, n.CPUs...)
	}
	sort.Ints(all)
	return all
}

// NodeOf returns the node that holds cpu, or -1. Pure.
func (t Topology) NodeOf(cpu int) int {
	for _, n := range t.Nodes {
		for _, c := range n.CPUs {
			if c == cpu {
				return n.ID
			}
		}
	}
	return -1
}

// HasNode reports whether id is a node of this topology. Pure.
func (t Topology) HasNode(id int) bool {
	for _, n := range t.Nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}

// Distance returns the SLIT distance between two nodes: 10 for the same
// node, the kernel's value when known, 20 (one hop) otherwise. Pure.
func (t Topology) Distance(from, to int) int {
	if from == to {
		return 10
	}
	for _, n := range t.Nodes {
		if n.ID == from && to >= 0 && to < len(n.Distance) {
			return n.Distance[to]
		}
	}
	return 20
}

// NodesByDistance returns the IDs of nodes that have online CPUs, nearest
// to from first (ties by ID). An unknown from (-1) yields ID order. Pure.
func (t Topology) NodesByDistance(from int) []int {
	var ids []int
	for _, n := range t.Nodes {
		if len(n.CPUs) > 0 {
			ids = append(ids, n.ID)
		}
	}
	if !t.HasNode(from) {
		return ids
	}
	sort.SliceStable(ids, func(i, j int) bool {
		return t.Distance(from, ids[i]) < t.Distance(from, ids[j])
	})
	return ids
}

// String renders "node0: 0-7; node1: 8-15" for tables and logs. Pure.
func (t Topology) String() string {
	parts := make([]string, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		cpus := FormatCPUList(n.CPUs)
		if cpus == "" {
			cpus = "no CPUs"
		}
		parts = append(parts, fmt.Sprintf("node%d: %s", n.ID, cpus))
	}
	s := strings.Join(parts, "; ")
	if len(t.Offline) > 0 {
		s += "; offline: " + FormatCPUList(t.Offline)
	}
	return s
}
