package node

import (
	"path/filepath"
	"sync"

	"github.com/sluicemq/sluice/segstore"
)

// hwCheckpointFile is Kafka's replication-offset-checkpoint: each local
// replica's high watermark, so a restarted broker does not start its
// replicas (leading or following) at the log start and report, or serve,
// a high watermark far behind what was already committed.
const hwCheckpointFile = "replication-offset-checkpoint"

// hwCheckpoints is the broker's replication-offset-checkpoint in a cluster.
// The file is read on first use; each entry is handed to its replica once,
// when the broker first gives it a role (restore), and written back until
// then, so a checkpoint taken before the metadata caught up loses nothing.
//
// Standalone brokers do not use it: their HW is their LEO.
//
// Concurrency: restore and write are safe for concurrent use; write is
// meant for one goroutine (the leaders' tick) and serializes anyway. Lock
// order: writeMu, then mu, then registry.mu (write's lookups) or
// partition.watchMu (restore wakes parked fetches). Only writeMu is held
// while the file is written and synced.
type hwCheckpoints struct {
	mu      sync.Mutex
	loaded  bool
	pending map[segstore.TopicPartition]int64 // read at start, not yet restored

	writeMu sync.Mutex
}

// loadLocked reads the file once. An unreadable file costs only the
// restore: replicas start at their log start, as without one.
func (h *hwCheckpoints) loadLocked(n *Node) {
	if h.loaded {
		return
	}
	h.loaded = true
	m, err := segstore.ReadOffsetCheckpoint(n.fs, filepath.Join(n.cfg.DataDir, hwCheckpointFile))
	if err != nil {
		n.log.Warn("replication offset checkpoint unreadable; replicas start their high watermarks at the log start",
			"err", err)
		m = nil
	}
	h.pending = m
}

// restore raises p's high watermark, the first time after the broker
// started, to its checkpointed value capped at l's LEO (what was committed
// and is still here). Call before building p's Leader or Follower from
// p.hw.
func (h *hwCheckpoints) restore(n *Node, p *partition, l *segstore.Log) {
	if l == nil {
		return
	}
	k := segstore.TopicPartition{Topic: p.topic.name, Partition: p.index}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loadLocked(n)
	hw, ok := h.pending[k]
	if !ok {
		return
	}
	delete(h.pending, k)
	// Under mu: a write in between must see either the entry or the HW.
	if hw = min(hw, l.Offsets().End); hw > p.hw.Load() {
		p.advanceHW(hw)
	}
}

// write replaces the file with the high watermark of every local replica
// log: the replica's own once it has a role, the checkpointed one before.
// Logs of no replica (deleted or moved away) are left out.
func (h *hwCheckpoints) write(n *Node) error {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	out := map[segstore.TopicPartition]int64{}
	h.mu.Lock()
	h.loadLocked(n)
	for _, l := range n.store.Logs() {
		k := segstore.TopicPartition{Topic: l.Topic(), Partition: l.Partition()}
		if hw, ok := h.pending[k]; ok {
			out[k] = hw
			continue
		}
		if p := n.reg.partition(k.Topic, k.Partition); p != nil && p.getLog() == l {
			out[k] = p.hw.Load()
		}
	}
	for k := range h.pending { // their logs are gone
		if _, ok := out[k]; !ok {
			delete(h.pending, k)
		}
	}
	h.mu.Unlock()
	return segstore.WriteOffsetCheckpoint(n.fs, filepath.Join(n.cfg.DataDir, hwCheckpointFile), out)
}
