package tuning

import (
	"fmt"
	"strings"
	"sync"
)

// PinningMode is the numa.pinning setting.
type PinningMode string

const (
	PinningAuto PinningMode = "auto" // pin shard threads per the Plan
	PinningOff  PinningMode = "off"  // let the Go scheduler place threads
)

// ParsePinningMode parses numa.pinning ("" means auto). Pure.
func ParsePinningMode(s string) (PinningMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return PinningAuto, nil
	case "off":
		return PinningOff, nil
	}
	return "", fmt.Errorf("numa.pinning=%q: want auto or off", s)
}

// Shard is one event loop + ring and the CPU its thread is pinned to.
type Shard struct {
	ID   int   `json:"id"`
	Node int   `json:"node"`
	CPUs []int `json:"cpus"`
}

// Plan maps shards to CPUs. It is an immutable value after NewPlan; share
// it between goroutines freely.
type Plan struct {
	Shards   []Shard  `json:"shards"`
	DiskNode int      `json:"disk_node"` // -1 when unknown
	NICNode  int      `json:"nic_node"`  // -1 when unknown
	Topo     Topology `json:"-"`
}

// NewPlan places shards (0 = one per online CPU) on CPUs, one CPU each.
// When there are fewer shards than CPUs they go to the node nearest the
// data disk (else the NIC), spilling to further nodes; with neither known
// they alternate between nodes so every node's memory bandwidth is used.
// More shards than CPUs wrap around and share CPUs. Pure.
func NewPlan(t Topology, shards, diskNode, nicNode int) (Plan, error) {
	online := t.OnlineCPUs()
	if len(online) == 0 {
		return Plan{}, fmt.Errorf("tuning: topology has no online CPUs")
	}
	if shards <= 0 {
		shards = len(online)
	}
	p := Plan{DiskNode: knownNode(t, diskNode), NICNode: knownNode(t, nicNode), Topo: t}
	pref := p.DiskNode
	if pref < 0 {
		pref = p.NICNode
	}
	var order []int
	if pref >= 0 {
		for _, id := range t.NodesByDistance(pref) {
			order = append(order, nodeCPUs(t, id)...)
		}
	} else {
		order = interleave(t)
	}
	for i := 0; i < shards; i++ {
		cpu := order[i%len(order)]
		p.Shards = append(p.Shards, Shard{ID: i, Node: t.NodeOf(cpu), CPUs: []int{cpu}})
	}
	return p, nil
}

// knownNode returns id when it is a node of the topology, else -1 (the
// kernel says -1 for "no affinity", and a stale config may name a node this
// host lacks). A memory-only node is kept: NodesByDistance finds the CPUs
// nearest to it.
func knownNode(t Topology, id int) int {
	if id >= 0 && t.HasNode(id) {
		return id
	}
	return -1
}

func nodeCPUs(t Topology, id int) []int {
	for _, n := range t.Nodes {
		if n.ID == id {
			return n.CPUs
		}
	}
	return nil
}

// interleave orders CPUs node0[0], node1[0], node0[1], node1[1], ...
func interleave(t Topology) []int {
	var out []int
	for i := 0; ; i++ {
		added := false
		for _, n := range t.Nodes {
			if i < len(n.CPUs) {
				out = append(out, n.CPUs[i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// Summary renders the plan per node, e.g.
// "node1: shards 0-7 on CPUs 8-15; node0: shards 8-15 on CPUs 0-7".
// Pure; this is what `sluice tune` prints as the pinning mapping.
func (p Plan) Summary() string {
	var parts []string
	seen := map[int]bool{}
	for _, s := range p.Shards {
		if seen[s.Node] {
			continue
		}
		seen[s.Node] = true
		var ids, cpus []int
		for _, o := range p.Shards {
			if o.Node == s.Node {
				ids = append(ids, o.ID)
				cpus = append(cpus, o.CPUs...)
			}
		}
		parts = append(parts, fmt.Sprintf("node%d: shards %s on CPUs %s", s.Node, FormatCPUList(ids), FormatCPUList(cpus)))
	}
	return strings.Join(parts, "; ")
}

// Balancer assigns partitions to shards: to the least-loaded shard on the
// node nearest the partition's data disk (else the NIC's node, else any
// shard), lowest shard ID on ties, which makes "unknown" round-robin.
// Safe for concurrent use.
type Balancer struct {
	mu   sync.Mutex
	plan Plan
	load []int // partitions per shard
}

// NewBalancer returns a Balancer with no partitions assigned. Safe to call
// concurrently; p must not be mutated afterwards.
func NewBalancer(p Plan) *Balancer {
	return &Balancer{plan: p, load: make([]int, len(p.Shards))}
}

// Assign returns the shard for a new partition whose data disk is on
// diskNode (-1 unknown) and counts it. Safe for concurrent use.
func (b *Balancer) Assign(diskNode int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	cands := b.candidates(diskNode)
	best := cands[0]
	for _, s := range cands[1:] {
		if b.load[s] < b.load[best] {
			best = s
		}
	}
	b.load[best]++
	return best
}

// Release forgets one partition on shard (deleted or moved away). Safe for
// concurrent use.
func (b *Balancer) Release(shard int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if shard >= 0 && shard < len(b.load) && b.load[shard] > 0 {
		b.load[shard]--
	}
}

// candidates returns the shard IDs (ascending) of the nearest node that has
// shards, or all shards when no node is known.
func (b *Balancer) candidates(diskNode int) []int {
	from := knownNode(b.plan.Topo, diskNode)
	if from < 0 {
		from = b.plan.NICNode
	}
	if from >= 0 {
		for _, id := range b.plan.Topo.NodesByDistance(from) {
			var ids []int
			for _, s := range b.plan.Shards {
				if s.Node == id {
					ids = append(ids, s.ID)
				}
			}
			if len(ids) > 0 {
				return ids
			}
		}
	}
	all := make([]int, len(b.plan.Shards))
	for i := range all {
		all[i] = i
	}
	return all
}

// AssignPartitions assigns partitions in order, the i-th living on a disk
// on diskNodes[i], and returns their shards. Pure: same input, same output.
func AssignPartitions(p Plan, diskNodes []int) []int {
	b := NewBalancer(p)
	out := make([]int, len(diskNodes))
	for i, n := range diskNodes {
		out[i] = b.Assign(n)
	}
	return out
}
