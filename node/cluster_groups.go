package node

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// offsetsCommitTimeout is Kafka's offsets.commit.timeout.ms: how long a
// commit waits for the offsets partition's in-sync replicas.
const offsetsCommitTimeout = 5 * time.Second

// offsetsReplicationFactor is Kafka's offsets.topic.replication.factor; a
// cluster with fewer live brokers gets as many replicas as it has.
const offsetsReplicationFactor = 3

func (g *groups) replicationFactor() int16 {
	c := g.n.cluster
	if c == nil {
		return 1
	}
	s, _ := c.currentView()
	return int16(max(1, min(offsetsReplicationFactor, len(s.LiveBrokers()))))
}

// In a cluster the coordinator of a group is the leader of its offsets
// partition: a broker loads a partition when it starts leading it and
// unloads it when it stops, so the coordinator moves with leadership.

// leaderChanged is called by reconcile when p's role here changed.
func (g *groups) leaderChanged(p *partition) {
	if p.topic.name != offsetsTopic || p.index >= g.parts {
		return
	}
	ldr := p.ldr.Load()
	if ldr == nil {
		g.coord.Unload(p.index)
		return
	}
	g.n.async.Add(1)
	go func() {
		defer g.n.async.Done()
		g.coord.Unload(p.index) // a previous term's state is stale
		if err := g.load(p); err != nil {
			g.n.log.Error("cannot load group coordinator partition", "partition", p.index, "err", err)
			return
		}
		if p.ldr.Load() != ldr {
			g.coord.Unload(p.index) // lost the leadership while loading
		}
	}()
}

// clusterCoordinator answers FindCoordinator in a cluster: the leader of
// the group's offsets partition, wherever it is.
func (n *Node) clusterCoordinator(key string) (id int32, host string, port int32, code int16, msg *string) {
	p := n.reg.partition(offsetsTopic, n.groups.partitionOf(key))
	if p == nil {
		m := "the offsets topic is not available"
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code, &m
	}
	st := p.state()
	if st.Leader < 0 {
		m := "the group's offsets partition has no leader"
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code, &m
	}
	for _, b := range n.brokers() {
		if b.id == st.Leader {
			return b.id, b.host, b.port, 0, nil
		}
	}
	m := "the group's offsets partition leader is not live"
	return -1, "", -1, kerr.CoordinatorNotAvailable.Code, &m
}
