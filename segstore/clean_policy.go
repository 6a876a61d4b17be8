package segstore

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// CleanupPolicy is cleanup.policy: which of retention (delete) and
// compaction (compact) apply to a log. The zero value means delete.
type CleanupPolicy uint8

const (
	// CleanupDelete: retention.ms and retention.bytes delete old segments.
	CleanupDelete CleanupPolicy = 1 << iota
	// CleanupCompact: the cleaner keeps the latest record of each key.
	CleanupCompact
)

// ParseCleanupPolicy parses Kafka's list value: "delete", "compact", or
// both ("compact,delete" or "delete,compact"), items trimmed.
func ParseCleanupPolicy(s string) (CleanupPolicy, error) {
	var p CleanupPolicy
	for _, item := range strings.Split(s, ",") {
		switch strings.TrimSpace(item) {
		case "delete":
			p |= CleanupDelete
		case "compact":
			p |= CleanupCompact
		default:
			return 0, fmt.Errorf("cleanup.policy=%q: %q is not delete or compact (want delete, compact, or compact,delete)",
				s, strings.TrimSpace(item))
		}
	}
	return p, nil
}

// String is the policy as Kafka writes it.
func (p CleanupPolicy) String() string {
	switch p {
	case CleanupCompact:
		return "compact"
	case CleanupCompact | CleanupDelete:
		return "compact,delete"
	}
	return "delete"
}

// Compact reports whether the cleaner compacts the log.
func (p CleanupPolicy) Compact() bool { return p&CleanupCompact != 0 }

// Delete reports whether retention deletes old segments; true for the zero
// value.
func (p CleanupPolicy) Delete() bool { return p&CleanupDelete != 0 || p == 0 }

// Kafka's defaults of the compaction settings.
const (
	DefaultDeleteRetention   = 24 * time.Hour   // delete.retention.ms
	DefaultMinCleanableRatio = 0.5              // min.cleanable.dirty.ratio
	DefaultCleanerBackoff    = 15 * time.Second // log.cleaner.backoff.ms
	DefaultDedupeBufferBytes = 128 << 20        // log.cleaner.dedupe.buffer.size
	// MaxCompactionLagForever is max.compaction.lag.ms's default,
	// Long.MAX_VALUE ms, which no Duration holds: the largest Duration.
	MaxCompactionLagForever time.Duration = math.MaxInt64
)

// CleanerConfig configures a Store's log cleaner (log.cleaner.*).
type CleanerConfig struct {
	// Disable is log.cleaner.enable=false: no background cleaning (Clean
	// still works when called).
	Disable bool
	// Backoff is log.cleaner.backoff.ms: the pause after a round that found
	// nothing to clean (default 15s).
	Backoff time.Duration
	// DedupeBufferBytes is log.cleaner.dedupe.buffer.size (default 128
	// MiB): the most memory the key → offset map of one pass may use. A
	// pass cleans as much of the dirty range as its keys fit in.
	DedupeBufferBytes int64
	// OnClean, if set, is told about every pass that rewrote a log, on the
	// goroutine that ran it. It must be quick (update metrics).
	OnClean func(CleanStats)
}

func (c CleanerConfig) normalized() CleanerConfig {
	if c.Backoff <= 0 {
		c.Backoff = DefaultCleanerBackoff
	}
	if c.DedupeBufferBytes <= 0 {
		c.DedupeBufferBytes = DefaultDedupeBufferBytes
	}
	return c
}

// normalizedCompaction fills the compaction fields of a LogConfig: zero
// means Kafka's default, as for the other fields. (Kafka's explicit zeros
// are spelled differently: delete.retention.ms=0 as 1 ms, and
// min.cleanable.dirty.ratio=0 as the smallest positive ratio — the same
// thing, since a pass needs some dirty bytes anyway.)
func (c LogConfig) normalizedCompaction() LogConfig {
	if c.Cleanup == 0 {
		c.Cleanup = CleanupDelete
	}
	if c.DeleteRetentionMs <= 0 {
		c.DeleteRetentionMs = DefaultDeleteRetention
	}
	if c.MinCleanableRatio <= 0 || math.IsNaN(c.MinCleanableRatio) {
		c.MinCleanableRatio = DefaultMinCleanableRatio
	}
	c.MinCleanableRatio = min(c.MinCleanableRatio, 1)
	c.MinCompactionLagMs = max(c.MinCompactionLagMs, 0)
	if c.MaxCompactionLagMs <= 0 {
		c.MaxCompactionLagMs = MaxCompactionLagForever
	}
	return c
}

// rollMs is how old the active segment may get: segment.ms, or
// max.compaction.lag.ms when that is shorter on a compacted log (Kafka's
// rule, so that no record waits longer than the lag for the cleaner
// because it sits in the never-cleaned active segment).
func (c *LogConfig) rollMs() time.Duration {
	if c.Cleanup.Compact() && c.MaxCompactionLagMs < c.SegmentMs {
		return c.MaxCompactionLagMs
	}
	return c.SegmentMs
}
