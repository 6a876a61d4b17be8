package segstore

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
)

// FlushPolicy is log.flush.policy: when appended data is fdatasynced.
type FlushPolicy string

const (
	// FlushAck fsyncs every batch before it is acknowledged (the default).
	// Group commit shares one fdatasync per file among all batches that
	// arrive while the previous round is on disk.
	FlushAck FlushPolicy = "ack"
	// FlushInterval fsyncs when log.flush.interval.messages or
	// log.flush.interval.ms is reached; acknowledgements do not wait.
	FlushInterval FlushPolicy = "interval"
	// FlushOS leaves flushing to the page cache (Kafka's default); segments
	// are still synced when they roll and at clean shutdown.
	FlushOS FlushPolicy = "os"
)

// ParseFlushPolicy accepts "ack", "interval" or "os".
func ParseFlushPolicy(s string) (FlushPolicy, error) {
	switch p := FlushPolicy(s); p {
	case FlushAck, FlushInterval, FlushOS:
		return p, nil
	}
	return "", fmt.Errorf("log.flush.policy=%q: want ack, interval or os", s)
}

// Config configures a Store.
type Config struct {
	// Dir is the data directory (log.dirs).
	Dir string
	// FS defaults to the real file system.
	FS vfs.FS
	// Engine runs the writes and syncs; required. The Store owns it from Open
	// on and closes it in Close.
	Engine ioring.Engine
	// Flush is log.flush.policy; default FlushAck.
	Flush FlushPolicy
	// FlushMessages is log.flush.interval.messages for FlushInterval
	// (0: no message bound).
	FlushMessages int64
	// FlushEvery is log.flush.interval.ms for FlushInterval (0: no time bound).
	FlushEvery time.Duration
	// CheckpointEvery is log.flush.offset.checkpoint.interval.ms (default 60s):
	// how often recovery points are written, which bounds the recovery scan.
	CheckpointEvery time.Duration
	// ProducerIDExpiration is producer.id.expiration.ms (default 24h): an
	// idempotent producer whose last batch is older is forgotten.
	ProducerIDExpiration time.Duration
	// ProducerIDExpirationCheckEvery is
	// producer.id.expiration.check.interval.ms (default 10 minutes).
	ProducerIDExpirationCheckEvery time.Duration
	// Defaults is the configuration of logs opened from disk until SetConfig.
	Defaults LogConfig
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnRound, if set, is told about every group commit, on the committer
	// goroutine: it must be quick and must not block (update a metric).
	// With several Committers it is called from each, concurrently.
	OnRound func(Round)
	// Cleaner configures log compaction (log.cleaner.*).
	Cleaner CleanerConfig
	// NoDirectWrites makes cold logs (SetColdWrites) write through the page
	// cache and drop their synced pages, instead of writing with O_DIRECT.
	NoDirectWrites bool

	// Committers is how many committer goroutines share the logs, each with
	// its own engine and its own group commit (default 1). The node runs one
	// per NUMA node of its pinning plan.
	Committers int
	// NewEngine returns the engine of committer i for i >= 1 (committer 0
	// runs Engine). Required when Committers > 1; the Store owns and closes
	// what it returns.
	NewEngine func(i int) (ioring.Engine, error)
	// CommitterFor picks a log's committer (taken modulo Committers) when
	// the log is opened or created; the choice holds for the log's life.
	// Nil: committer 0. It is called with the Store's lock held and must
	// not call back into the Store.
	CommitterFor func(topic string, partition int32) int
	// LogDeleted, if set, is told after DeleteLog removed a log, so that
	// the owner of CommitterFor can forget it. Same rules as CommitterFor,
	// except that the Store's lock is not held.
	LogDeleted func(topic string, partition int32)
	// CommitterStart, if set, runs first thing on committer i's goroutine,
	// which is locked to its OS thread (runtime.LockOSThread) for its whole
	// life, so whatever the hook does to the thread (CPU affinity) holds
	// for every round. segstore itself pins nothing.
	CommitterStart func(i int)
}

// Round describes one group commit: one engine submission.
type Round struct {
	Appends int           // Append calls completed by this round
	Writes  int           // vectored writes (one per log with data)
	Syncs   int           // fdatasyncs
	Bytes   int64         // bytes written
	Took    time.Duration // submission to completion of the whole round
}

// TimestampType is message.timestamp.type.
type TimestampType int8

const (
	CreateTime    TimestampType = 0
	LogAppendTime TimestampType = 1
)

// LogConfig is a partition's topic-level configuration, with Kafka's names.
type LogConfig struct {
	SegmentBytes       int64         // segment.bytes, default 1 GiB
	SegmentMs          time.Duration // segment.ms, default 7 days
	RetentionMs        time.Duration // retention.ms, default 7 days; <0 keeps forever
	RetentionBytes     int64         // retention.bytes, default -1 (no limit)
	IndexIntervalBytes int64         // index.interval.bytes, default 4096
	MaxMessageBytes    int64         // max.message.bytes, default 1048588
	TimestampType      TimestampType // message.timestamp.type

	// Compaction (clean*.go). Zero values mean Kafka's defaults.
	Cleanup            CleanupPolicy // cleanup.policy, default delete
	DeleteRetentionMs  time.Duration // delete.retention.ms, default 1 day
	MinCleanableRatio  float64       // min.cleanable.dirty.ratio, default 0.5
	MinCompactionLagMs time.Duration // min.compaction.lag.ms, default 0
	MaxCompactionLagMs time.Duration // max.compaction.lag.ms, default forever
}

// DefaultLogConfig returns Kafka's defaults.
func DefaultLogConfig() LogConfig {
	return LogConfig{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * 24 * time.Hour,
		RetentionMs:        7 * 24 * time.Hour,
		RetentionBytes:     -1,
		IndexIntervalBytes: 4096,
		MaxMessageBytes:    1048588,
		Cleanup:            CleanupDelete,
		DeleteRetentionMs:  DefaultDeleteRetention,
		MinCleanableRatio:  DefaultMinCleanableRatio,
		MaxCompactionLagMs: MaxCompactionLagForever,
	}
}

// normalized fills zero fields with defaults and clamps what the on-disk
// format cannot hold (positions in the index are 32-bit).
func (c LogConfig) normalized() LogConfig {
	d := DefaultLogConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, math.MaxInt32)
	if c.SegmentMs <= 0 {
		c.SegmentMs = d.SegmentMs
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = d.RetentionMs
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = d.RetentionBytes
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	return c.normalizedCompaction()
}
