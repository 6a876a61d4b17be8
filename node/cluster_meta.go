package node

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/ctrl"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/sluicemq/sluice/repl"
	"github.com/sluicemq/sluice/segstore"
)

// reconcile makes the registry and the local replicas match committed
// metadata s: topics appear, grow, change configs and disappear as s says;
// each partition this broker is a replica of gets its log and becomes leader
// or follower of the epoch s names; replicas it no longer holds are deleted.
// Runs on the metadata goroutine; serialized with admin changes by adminMu.
func (c *cluster) reconcile(s *ctrl.State) {
	r := c.n.reg
	r.adminMu.Lock()
	defer r.adminMu.Unlock()

	r.mu.RLock()
	old := r.topics
	r.mu.RUnlock()
	next := make(map[string]*topic, len(s.Topics))
	type update struct {
		t       *topic
		parts   []*partition
		configs map[string]string
	}
	var updates []update
	var gone []*topic
	for name, ct := range s.Topics {
		t := old[name]
		if t != nil && t.id != ct.ID {
			gone = append(gone, t) // deleted and re-created under the same name
			t = nil
		}
		if t == nil {
			t = &topic{name: name, id: ct.ID}
		}
		parts := t.parts
		if len(parts) < len(ct.Partitions) {
			parts = slices.Clone(parts)
			for i := len(parts); i < len(ct.Partitions); i++ {
				parts = append(parts, newPartition(t, int32(i), nil, partState{Leader: ctrl.NoLeader}))
			}
		}
		next[name] = t
		updates = append(updates, update{t, parts, maps.Clone(ct.Configs)})
	}
	for name, t := range old {
		if next[name] != t {
			if nt := next[name]; nt == nil || nt.id != t.id {
				if !slices.Contains(gone, t) {
					gone = append(gone, t)
				}
			}
		}
	}
	r.mu.Lock()
	for _, u := range updates {
		u.t.parts, u.t.configs = u.parts, u.configs
	}
	r.topics = next
	r.byID = make(map[[16]byte]*topic, len(next))
	for _, t := range next {
		r.byID[t.id] = t
	}
	r.mu.Unlock()

	for _, t := range gone {
		for _, p := range t.parts {
			c.dropReplica(p)
		}
		c.n.log.Info("topic deleted", "topic", t.name)
	}
	for _, u := range updates {
		ct := s.Topics[u.t.name]
		if ct == nil {
			continue
		}
		lc := r.cfg.logConfigFor(u.configs)
		for i, p := range u.parts {
			c.applyPartition(s, u.t, p, ct.Partitions[i], lc)
		}
	}
	c.sweepStrays(s)
}

// applyPartition moves one partition to its committed state.
func (c *cluster) applyPartition(s *ctrl.State, t *topic, p *partition, cp ctrl.Partition, lc segstore.LogConfig) {
	st := partState{Leader: cp.Leader, LeaderEpoch: cp.LeaderEpoch, PartitionEpoch: cp.PartitionEpoch,
		Replicas: slices.Clone(cp.Replicas), ISR: slices.Clone(cp.ISR), Offline: offlineReplicas(s, cp.Replicas)}
	p.st.Store(&st)
	me := c.n.cfg.NodeID
	if !slices.Contains(cp.Replicas, me) {
		c.dropReplica(p)
		return
	}
	l := p.getLog()
	if l == nil {
		var err error
		l, err = c.openReplicaLog(t, p.index, lc)
		if err != nil {
			c.n.log.Error("cannot open replica log", "topic", t.name, "partition", p.index, "err", err)
			return
		}
		// Until a leader (or this broker as leader, once followers fetched)
		// says otherwise nothing is known committed.
		p.hw.Store(l.Offsets().Start)
		p.log.Store(l)
	} else {
		l.SetConfig(lc)
	}
	ps := repl.PartitionState{Leader: cp.Leader, LeaderEpoch: cp.LeaderEpoch, PartitionEpoch: cp.PartitionEpoch,
		Replicas: st.Replicas, ISR: st.ISR, Adding: cp.AddingReplicas}
	if cp.Leader == me {
		c.becomeLeader(t, p, ps)
	} else {
		c.becomeFollower(s, p, ps)
	}
}

// offlineReplicas lists replicas on brokers that are fenced or unknown.
func offlineReplicas(s *ctrl.State, replicas []int32) []int32 {
	var out []int32
	for _, id := range replicas {
		if !s.Live(id) {
			out = append(out, id)
		}
	}
	return out
}

// brokerEndpoint is broker b's Kafka listener (the one named PLAINTEXT,
// else the first); false when b is unknown or has none.
func brokerEndpoint(b *ctrl.Broker) (ctrl.Endpoint, bool) {
	if b == nil || len(b.Listeners) == 0 {
		return ctrl.Endpoint{}, false
	}
	e := b.Listeners[0]
	for _, l := range b.Listeners {
		if l.Name == "PLAINTEXT" {
			e = l
		}
	}
	return e, true
}

// brokerAddr is the Kafka listener of broker id in s, or "".
func brokerAddr(s *ctrl.State, id int32) string {
	e, ok := brokerEndpoint(s.Brokers[id])
	if !ok {
		return ""
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
}

// openReplicaLog opens (or creates) the log of a replica this broker holds.
// The partition directory records its topic's id in partition.metadata, as
// Kafka's does: a log left by an earlier topic of the same name (deleted
// and re-created while this broker was down) is deleted, not taken for the
// new topic's history.
func (c *cluster) openReplicaLog(t *topic, idx int32, lc segstore.LogConfig) (*segstore.Log, error) {
	l, err := c.n.store.CreateLog(t.name, idx, lc)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(l.Dir(), "partition.metadata")
	want := "version: 0\ntopic_id: " + ctrl.TopicID(t.id).String() + "\n"
	data, rerr := vfs.ReadFile(c.n.fs, path)
	if rerr == nil && string(data) == want {
		return l, nil
	}
	if rerr == nil || l.Offsets().End > 0 {
		c.n.log.Warn("replica log belongs to an earlier topic of the same name; deleting it",
			"topic", t.name, "partition", idx, "found", strings.TrimSpace(string(data)))
		if err := c.n.store.DeleteLog(t.name, idx); err != nil {
			return nil, err
		}
		if l, err = c.n.store.CreateLog(t.name, idx, lc); err != nil {
			return nil, err
		}
	}
	if err := vfs.WriteFileAtomic(c.n.fs, path, []byte(want)); err != nil {
		return nil, fmt.Errorf("%w: write %s: %w", segstore.ErrStorage, path, err)
	}
	return l, nil
}

// sweepStrays deletes local logs no replica in the metadata owns (topics
// deleted, or replicas moved away, while this broker was down). It runs
// once, when the broker's metadata has reached its own registration: every
// change before that is known. adminMu held.
func (c *cluster) sweepStrays(s *ctrl.State) {
	if c.swept || c.epoch.Load() == 0 || s.AppliedIndex < uint64(c.epoch.Load()) {
		return
	}
	c.swept = true
	for _, l := range c.n.store.Logs() {
		if p := c.n.reg.partition(l.Topic(), l.Partition()); p != nil && p.getLog() == l {
			continue
		}
		c.n.log.Warn("deleting a log no replica in the metadata owns", "topic", l.Topic(), "partition", l.Partition())
		if err := c.n.store.DeleteLog(l.Topic(), l.Partition()); err != nil {
			c.n.log.Error("deleting stray log failed", "topic", l.Topic(), "partition", l.Partition(), "err", err)
		}
	}
}
