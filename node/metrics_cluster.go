package node

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicemq/sluice/ctrl"
)

// clusterMetrics are replication's and the controller's metrics, named after
// Kafka's (ReplicaManager, KafkaController, ControllerStats).
type clusterMetrics struct {
	leaderChanges *metrics.Counter // partitions this broker started leading
	isrShrinks    *metrics.Counter
	isrExpands    *metrics.Counter
}

func newClusterMetrics(n *Node) clusterMetrics {
	s := n.cfg.Metrics
	m := clusterMetrics{
		leaderChanges: s.NewCounter("sluice_leader_elections_total"),
		isrShrinks:    s.NewCounter("sluice_isr_shrinks_total"),
		isrExpands:    s.NewCounter("sluice_isr_expands_total"),
	}
	if n.cfg.Cluster == nil {
		return m
	}
	// Broker view: partitions this broker leads.
	led := func(fn func(p *partition) bool) float64 {
		var k int
		for _, t := range n.reg.list() {
			for _, p := range n.reg.partitions(t) {
				if fn(p) {
					k++
				}
			}
		}
		return float64(k)
	}
	s.NewGauge("sluice_under_replicated_partitions", func() float64 {
		return led(func(p *partition) bool {
			l := p.ldr.Load()
			if l == nil {
				return false
			}
			under, _ := l.UnderReplicated()
			return under
		})
	})
	s.NewGauge("sluice_under_min_isr_partitions", func() float64 {
		return led(func(p *partition) bool {
			l := p.ldr.Load()
			if l == nil {
				return false
			}
			_, underMin := l.UnderReplicated()
			return underMin
		})
	})
	s.NewGauge("sluice_leader_partitions", func() float64 {
		return led(func(p *partition) bool { return p.ldr.Load() != nil })
	})
	// Controller view, reported by the active controller only (as Kafka).
	active := func() bool {
		c := n.cluster
		return c != nil && c.raft != nil && c.raft.LeaderID() == ctrl.RaftID(n.cfg.NodeID)
	}
	s.NewGauge("sluice_active_controller_count", func() float64 {
		if active() {
			return 1
		}
		return 0
	})
	fromView := func(fn func(s *ctrl.State) int) func() float64 {
		return func() float64 {
			if !active() {
				return 0
			}
			s, _ := n.cluster.currentView()
			return float64(fn(s))
		}
	}
	s.NewGauge("sluice_offline_partitions", fromView(func(s *ctrl.State) int {
		k := 0
		for _, t := range s.Topics {
			for _, p := range t.Partitions {
				if p.Leader == ctrl.NoLeader {
					k++
				}
			}
		}
		return k
	}))
	s.NewGauge("sluice_fenced_brokers", fromView(func(s *ctrl.State) int {
		k := 0
		for _, b := range s.Brokers {
			if b.Fenced {
				k++
			}
		}
		return k
	}))
	return m
}
