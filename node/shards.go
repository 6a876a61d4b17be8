package node

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
)

// ShardsView is what GET /debug/shards shows: the pinning plan, the
// threads that carry it, and which shard and committer each partition has.
type ShardsView struct {
	// Pinning is "auto" when threads are pinned, else "off".
	Pinning string `json:"pinning"`
	// Reason says why pinning is off ("numa.pinning=off", or the failure).
	Reason   string `json:"reason,omitempty"`
	Plan     string `json:"plan,omitempty"` // tuning.Plan.Summary
	DiskNode int    `json:"disk_node"`      // NUMA node of the data disk, -1 unknown
	NICNode  int    `json:"nic_node"`       // NUMA node of the NIC, -1 unknown
	// Shards are the plan's shards; shard i is event loop i.
	Shards     []ShardInfo     `json:"shards"`
	Committers []CommitterInfo `json:"committers"`
	Partitions []PartitionInfo `json:"partitions"` // by topic, then partition
}

// ShardInfo is one shard of the plan.
type ShardInfo struct {
	ID         int   `json:"id"`
	Node       int   `json:"node"`
	CPUs       []int `json:"cpus"`
	LoopTid    int   `json:"loop_tid"` // thread of its event loop once pinned, else 0
	Partitions int   `json:"partitions"`
}

// CommitterInfo is one segstore committer.
type CommitterInfo struct {
	ID     int   `json:"id"`
	Node   int   `json:"node"`           // NUMA node it serves, -1 when unpinned
	CPUs   []int `json:"cpus,omitempty"` // where it may run when pinned
	Pinned bool  `json:"pinned"`
	Tid    int   `json:"tid,omitempty"` // its thread once pinned
	Rounds int64 `json:"rounds"`
	Bytes  int64 `json:"bytes"`
}

// PartitionInfo places one partition.
type PartitionInfo struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Shard     int    `json:"shard"` // -1 when unpinned
	Committer int    `json:"committer"`
}

// Shards returns the current placement. Safe for concurrent use after New.
func (n *Node) Shards() ShardsView {
	p := n.pin
	v := ShardsView{Pinning: "off", DiskNode: -1, NICNode: -1, Shards: []ShardInfo{}}
	p.mu.Lock()
	if p.on && !p.failed {
		v.Pinning = "auto"
	}
	v.Reason = p.reason
	if p.on {
		v.Plan, v.DiskNode, v.NICNode = p.plan.Summary(), p.plan.DiskNode, p.plan.NICNode
		for i, s := range p.plan.Shards {
			v.Shards = append(v.Shards, ShardInfo{ID: s.ID, Node: s.Node, CPUs: s.CPUs,
				LoopTid: p.loopTids[i], Partitions: p.perShard[i]})
		}
	}
	var tids []int
	if p.on {
		tids = slices.Clone(p.committerTids)
	}
	p.mu.Unlock()

	for i, st := range n.store.CommitterStats() {
		c := CommitterInfo{ID: i, Node: -1, Rounds: st.Rounds, Bytes: st.Bytes}
		if p.on {
			c.Node, c.CPUs = p.nodes[i], p.cpus[i]
			c.Tid = tids[i]
			c.Pinned = c.Tid != 0
		}
		v.Committers = append(v.Committers, c)
	}
	for _, l := range n.store.Logs() {
		shard := -1
		if p.on {
			shard = p.shardOf(l.Topic(), l.Partition())
		}
		v.Partitions = append(v.Partitions, PartitionInfo{Topic: l.Topic(), Partition: l.Partition(),
			Shard: shard, Committer: l.Committer()})
	}
	slices.SortFunc(v.Partitions, func(a, b PartitionInfo) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return v
}

// ShardsHandler serves Shards as JSON (GET /debug/shards). Safe for
// concurrent use.
func (n *Node) ShardsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(n.Shards())
	})
}

// registerShardGauges adds sluice_shard_partitions{shard="N"} per shard of
// the plan (none when unpinned: there are no shards then).
func (p *pinning) registerShardGauges(set *metrics.Set) {
	if !p.on {
		return
	}
	for i := range p.plan.Shards {
		set.NewGauge(`sluice_shard_partitions{shard="`+strconv.Itoa(i)+`"}`, func() float64 {
			p.mu.Lock()
			defer p.mu.Unlock()
			return float64(p.perShard[i])
		})
	}
}
