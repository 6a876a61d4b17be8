// Package segstore is a partition's log on disk, in Kafka's layout:
//
//	<dir>/<topic>-<partition>/00000000000000000000.log        v2 RecordBatches as produced, offsets assigned
//	                          00000000000000000000.index      relative offset u32 + position u32, every index.interval.bytes
//	                          00000000000000000000.timeindex  timestamp i64 + relative offset u32
//	                          leader-epoch-checkpoint
//	<dir>/recovery-point-offset-checkpoint, log-start-offset-checkpoint, .kafka_cleanshutdown
//
// A Store owns a data directory and one committer goroutine that does group
// commit through an ioring.Engine: every append queued while the previous
// round was on disk goes out in the next round as one vectored write per log
// plus (under log.flush.policy=ack) one linked fdatasync per file, all in one
// submission. Appends never block on I/O; their completion callbacks run on
// the committer goroutine once the data is durable as the policy defines.
//
// Visibility: readers see a batch once its write completed (the LEO). Under
// policy=ack the LEO and the durable end (recovery point) move together, so
// nothing a reader sees can vanish in a crash. Callers (the node, later
// replication) bound reads by their high watermark.
//
// Failure rules: a failed write is cut back out of the file and fails its
// appends and every later queued append of that log (their offsets rewind);
// ENOSPC leaves the log usable, any other write error and any fsync error
// make the log's error sticky (KAFKA_STORAGE_ERROR) — a failed fsync is never
// retried, pebble's rule. Recovery after a crash scans from the recovery
// point, CRC-checks every batch, and cuts the first torn or corrupt batch and
// all after it.
//
// Concurrency: Store and Log methods are safe for concurrent use. Lock
// order: Store.mu → Log.mu → committer.qmu. Segment files are reference
// counted so a reader's Slice stays valid across retention and deletion.
package segstore
