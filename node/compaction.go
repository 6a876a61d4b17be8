package node

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicemq/sluice/segstore"
)

// storeDefaults is the configuration segstore gives the logs it finds on
// disk until the registry applies each topic's own (New does that before
// serving): the broker defaults, but never compaction, so that the
// cleaner, which starts with the store, cannot compact a topic whose own
// cleanup.policy says delete while the broker default says compact.
func storeDefaults(lc segstore.LogConfig) segstore.LogConfig {
	lc.Cleanup = segstore.CleanupDelete
	return lc
}

// newCleanerMetrics registers the log cleaner's metrics and returns the
// hook that updates them (segstore.CleanerConfig.OnClean), called once per
// pass that rewrote a log.
func newCleanerMetrics(s *metrics.Set) func(segstore.CleanStats) {
	runs := s.NewCounter("sluice_cleaner_runs_total")
	read := s.NewCounter("sluice_cleaner_bytes_read_total")
	written := s.NewCounter("sluice_cleaner_bytes_written_total")
	removed := s.NewCounter("sluice_cleaner_records_removed_total")
	tombs := s.NewCounter("sluice_cleaner_tombstones_removed_total")
	took := s.NewPrometheusHistogram("sluice_cleaner_run_duration_seconds")
	return func(c segstore.CleanStats) {
		runs.Inc()
		read.AddInt64(c.BytesRead)
		written.AddInt64(c.BytesWritten)
		removed.AddInt64(c.RecordsRemoved)
		tombs.AddInt64(c.TombstonesRemoved)
		took.Update(c.Took.Seconds())
	}
}
