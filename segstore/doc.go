// Package segstore is a partition's log on disk, in Kafka's layout:
//
//	<dir>/<topic>-<partition>/00000000000000000000.log        v2 RecordBatches as produced, offsets assigned
//	                          00000000000000000000.index      relative offset u32 + position u32, every index.interval.bytes
//	                          00000000000000000000.timeindex  timestamp i64 + relative offset u32
//	                          00000000000000000000.snapshot   idempotent producers' state below that offset
//	                          leader-epoch-checkpoint
//	<dir>/recovery-point-offset-checkpoint, log-start-offset-checkpoint, cleaner-offset-checkpoint,
//	      .kafka_cleanshutdown
//
// A Store owns a data directory and one committer goroutine (or
// Config.Committers of them, each with its own engine and its own share of
// the logs: shard.go) that does group commit through an ioring.Engine: every append queued while the previous
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
// Idempotent producers (producers.go): Append checks each batch's producer
// id, epoch and sequence against the partition's producer state under
// Log.mu, before offsets are assigned, and records it at once so later
// appends see it; a failed write takes its changes back (the undo records),
// so a retry is never taken for a duplicate of a batch that is not in the
// log. A retry of a written batch writes nothing and completes after the
// original. The state is snapshotted when a segment rolls and at clean
// shutdown, and rebuilt at open from the newest snapshot plus the batches
// after it (prodrebuild.go).
//
// Compaction (clean*.go): logs with cleanup.policy=compact are cleaned by
// one background goroutine per Store, Kafka's log cleaner: it picks the log
// with the highest dirty ratio (closed segments only, records older than
// min.compaction.lag.ms) once it reaches min.cleanable.dirty.ratio (at once
// past max.compaction.lag.ms, or when a kept tombstone is due), maps each
// key of the dirty range to its latest offset (128-bit key hashes, within
// log.cleaner.dedupe.buffer.size), and rewrites the log from its start
// through the mapped range, keeping a record iff it is its key's latest,
// dropping tombstones whose segment's newest record is older than
// delete.retention.ms. Offsets never change, so a compacted log has gaps:
// reads find the first batch ending at or after the offset asked for, and
// recovery accepts gaps between segments (not overlaps). Batches keep
// their base offset and lastOffsetDelta; a producer's last batch stays,
// emptied, so its sequence state survives. Cleaned segments are swapped in
// with Kafka's .cleaned/.swap/.deleted files, crash-safe at every step
// (clean_swap.go); cleaner-offset-checkpoint records how far each log is
// clean. Append refuses records without a key on compacted logs.
//
// Concurrency: Store and Log methods are safe for concurrent use. Lock
// order: Log.cl.files → Store.ckMu → Store.mu → Log.mu → committer.qmu
// (each may be skipped). Log.cl.files is held by a cleaning pass for
// its whole length and by whatever removes or renames segment files
// (retention, DeleteRecords, TruncateTo, DeleteLog), which first ask a pass
// to stop; Log.mu is held by the cleaner only to read and swap the segment
// list, never across file I/O. Segment files are reference counted so a
// reader's Slice stays valid across retention, cleaning and deletion.
package segstore
