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
	// Defaults is the configuration of logs opened from disk until SetConfig.
	Defaults LogConfig
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnRound, if set, is told about every group commit, on the committer
	// goroutine: it must be quick and must not block (update a metric).
	OnRound func(Round)
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
	return c
}
