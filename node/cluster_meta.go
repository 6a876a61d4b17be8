package node

import (
	"maps"
	"net"
	"strconv"
	"slices"

	"github.com/sluicemq/sluice/ctrl"
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
		lc := r.cfg.logConfigFor(u.configs)
		for i, p := range u.parts {
			c.applyPartition(s, u.t, p, ct.Partitions[i], lc)
		}
	}
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
		l, err = c.n.store.CreateLog(t.name, p.index, lc)
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
		Replicas: st.Replicas, ISR: st.ISR}
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

// brokerAddr is the Kafka listener of broker id in s, or "".
func brokerAddr(s *ctrl.State, id int32) string {
	b := s.Brokers[id]
	if b == nil || len(b.Listeners) == 0 {
		return ""
	}
	e := b.Listeners[0]
	for _, l := range b.Listeners {
		if l.Name == "PLAINTEXT" {
			e = l
		}
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
}
