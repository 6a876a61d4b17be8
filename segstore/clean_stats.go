package segstore

import (
	"sort"
	"time"
)

// CleanStats describes one cleaning pass of one log.
type CleanStats struct {
	Topic     string
	Partition int32
	// FirstDirty and End bound the dirty range this pass deduplicated:
	// afterwards the log is clean below End (the cleaner checkpoint).
	FirstDirty, End int64
	// SegmentsIn were replaced by SegmentsOut cleaned ones.
	SegmentsIn, SegmentsOut int
	BytesRead, BytesWritten int64
	// RecordsRead counts the records examined; RecordsRemoved those
	// dropped, TombstonesRemoved among them.
	RecordsRead, RecordsRemoved, TombstonesRemoved int64
	Took                                           time.Duration
}

// saveCleanerOffsets writes the cleaner checkpoint of every log.
func (st *Store) saveCleanerOffsets() error {
	st.ckMu.Lock()
	defer st.ckMu.Unlock()
	if err := st.writeCleanerOffsets(sortedLogs(st.Logs())); err != nil {
		return storageErr("write "+cleanerOffsetFile, err)
	}
	return nil
}

func sortedLogs(logs []*Log) []*Log {
	sort.Slice(logs, func(i, j int) bool {
		if logs[i].topic != logs[j].topic {
			return logs[i].topic < logs[j].topic
		}
		return logs[i].partition < logs[j].partition
	})
	return logs
}

// CleanerStats counts the cleaner's work since Open.
type CleanerStats struct {
	Runs           int64 // passes that rewrote a log
	BytesRead      int64
	BytesWritten   int64
	RecordsRemoved int64
}

// CleanerStats returns the cleaner's counters. Safe for concurrent use.
func (st *Store) CleanerStats() CleanerStats {
	c := st.cleaner
	return CleanerStats{Runs: c.runs.Load(), BytesRead: c.bytesRead.Load(),
		BytesWritten: c.bytesWritten.Load(), RecordsRemoved: c.removed.Load()}
}
