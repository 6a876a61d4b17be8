package node

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

// apiMetrics are one API's counters, created once at New.
type apiMetrics struct {
	requests *metrics.Counter
	latency  *metrics.PrometheusHistogram
}

// nodeMetrics are the broker's metrics, registered in Config.Metrics under
// Prometheus names. Hot-path updates are lock-free.
type nodeMetrics struct {
	bytesIn, bytesOut *metrics.Counter
	badRequests       *metrics.Counter
	rejected          *metrics.Counter
	badBatches        *metrics.Counter
	connections       atomic.Int64
	api               [maxAPIKey + 1]*apiMetrics
	// onRound feeds the group-commit histograms (segstore.Config.OnRound).
	onRound func(segstore.Round)
	// onClean feeds the log cleaner's metrics (metrics_cleaner.go).
	onClean func(segstore.CleanStats)
	clusterMetrics
}

func newNodeMetrics(n *Node) *nodeMetrics {
	s := n.cfg.Metrics
	m := &nodeMetrics{
		bytesIn:     s.NewCounter("sluice_request_bytes_total"),
		bytesOut:    s.NewCounter("sluice_response_bytes_total"),
		badRequests: s.NewCounter("sluice_malformed_requests_total"),
		rejected:    s.NewCounter("sluice_rejected_requests_total"),
		badBatches:  s.NewCounter("sluice_rejected_batches_total"),
	}
	s.NewGauge("sluice_connections", func() float64 { return float64(m.connections.Load()) })
	s.NewGauge("sluice_topics", func() float64 { t, _ := n.reg.count(); return float64(t) })
	s.NewGauge("sluice_partitions", func() float64 { _, p := n.reg.count(); return float64(p) })
	// Consumer groups by state, as Kafka names the states; n.groups exists
	// once New returns, before any scrape.
	for _, st := range []string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"} {
		s.NewGauge(`sluice_groups{state="`+st+`"}`, func() float64 { return float64(n.groups.coord.Groups()[st]) })
	}
	s.NewGauge("sluice_storage_rounds_total", func() float64 { return float64(n.store.Stats().Rounds) })
	s.NewGauge("sluice_storage_writes_total", func() float64 { return float64(n.store.Stats().Writes) })
	s.NewGauge("sluice_storage_syncs_total", func() float64 { return float64(n.store.Stats().Syncs) })
	s.NewGauge("sluice_storage_bytes_written_total", func() float64 { return float64(n.store.Stats().Bytes) })
	appends := s.NewHistogram("sluice_storage_round_appends")
	syncs := s.NewHistogram("sluice_storage_round_fsyncs")
	bytes := s.NewHistogram("sluice_storage_round_bytes")
	took := s.NewPrometheusHistogram("sluice_storage_round_duration_seconds")
	m.onClean = newCleanerMetrics(s)
	m.clusterMetrics = newClusterMetrics(n)
	m.onRound = func(r segstore.Round) {
		appends.Update(float64(r.Appends))
		syncs.Update(float64(r.Syncs))
		bytes.Update(float64(r.Bytes))
		took.Update(r.Took.Seconds())
	}
	for _, d := range apis {
		if d == nil {
			continue
		}
		name := kmsg.NameForKey(d.key)
		m.api[d.key] = &apiMetrics{
			requests: s.GetOrCreateCounter(`sluice_requests_total{api="` + name + `"}`),
			latency:  s.GetOrCreatePrometheusHistogram(`sluice_request_duration_seconds{api="` + name + `"}`),
		}
	}
	return m
}
