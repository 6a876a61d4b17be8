package node

// Topic-level configs: the table below is every key a topic may set, with
// Kafka's names, validation and broker-level defaults (Config, whose
// log.* properties cmd/sluice reads), and how each maps onto
// segstore.LogConfig. cleanup.policy takes delete, compact or both
// ("compact,delete" / "delete,compact"); compact turns on the log cleaner
// for the topic (segstore/clean.go) and makes produce refuse records
// without a key (INVALID_RECORD). The cleaner's topic settings are
// delete.retention.ms, min.cleanable.dirty.ratio, min.compaction.lag.ms and
// max.compaction.lag.ms, defaulting to the log.cleaner.* broker properties.
// Where Kafka's value has no direct LogConfig spelling (whose zero means
// "default"), the nearest equivalent is stored: delete.retention.ms=0 as
// 1 ms, min.cleanable.dirty.ratio=0 as the smallest positive ratio (the
// cleaner needs some dirty bytes either way), max.compaction.lag.ms=
// Long.MAX_VALUE as the largest Duration.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

// configDef is one topic-level config key. Every key sluice accepts is here;
// any other name is INVALID_CONFIG, so a config that would not take effect
// is refused rather than silently stored.
type configDef struct {
	name       string          // topic-level name
	brokerName string          // the broker property holding its default
	typ        kmsg.ConfigType // as DescribeConfigs reports it
	doc        string
	// def returns the broker-wide default as Kafka prints it.
	def func(c *Config) string
	// check validates a value (already trimmed).
	check func(v string) error
	// apply sets the value on a partition's LogConfig (nil: not a log
	// setting; the node reads it where it matters).
	apply func(lc *segstore.LogConfig, v string)
	// topicOnly: Kafka has no broker property for its default (brokerName
	// repeats name; DescribeConfigs on a broker does not list it).
	topicOnly bool
}

var topicConfigs = []configDef{
	{name: "cleanup.policy", brokerName: "log.cleanup.policy", typ: kmsg.ConfigTypeList,
		doc:   "delete (retention deletes old segments), compact (keep the latest record of each key), or both",
		def:   func(c *Config) string { return c.CleanupPolicy },
		check: validateCleanupPolicy,
		apply: func(lc *segstore.LogConfig, v string) { lc.Cleanup, _ = segstore.ParseCleanupPolicy(v) }},
	{name: "delete.retention.ms", brokerName: "log.cleaner.delete.retention.ms", typ: kmsg.ConfigTypeLong,
		doc:   "compacted topics: a tombstone stays until the newest record of its segment is this old",
		def:   func(c *Config) string { return durMs(c.Log.DeleteRetentionMs) },
		check: intRange(0, math.MaxInt64),
		apply: func(lc *segstore.LogConfig, v string) { lc.DeleteRetentionMs = max(msDur(v), time.Millisecond) }},
	{name: "max.compaction.lag.ms", brokerName: "log.cleaner.max.compaction.lag.ms", typ: kmsg.ConfigTypeLong,
		doc:   "compacted topics: the longest a record stays uncompacted, whatever the dirty ratio",
		def:   func(c *Config) string { return lagMs(c.Log.MaxCompactionLagMs) },
		check: intRange(1, math.MaxInt64),
		apply: func(lc *segstore.LogConfig, v string) { lc.MaxCompactionLagMs = msDur(v) }},
	{name: "compression.type", brokerName: "compression.type", typ: kmsg.ConfigTypeString,
		doc:   "producer: batches are stored as the producer compressed them",
		def:   func(*Config) string { return "producer" },
		check: oneOf("producer")},
	{name: "max.message.bytes", brokerName: "message.max.bytes", typ: kmsg.ConfigTypeInt,
		doc:   "largest record batch accepted",
		def:   func(c *Config) string { return itoa(c.Log.MaxMessageBytes) },
		check: intRange(0, math.MaxInt32),
		apply: func(lc *segstore.LogConfig, v string) { lc.MaxMessageBytes = atoi(v) }},
	{name: "message.timestamp.type", brokerName: "log.message.timestamp.type", typ: kmsg.ConfigTypeString,
		doc: "CreateTime or LogAppendTime",
		def: func(c *Config) string {
			if c.Log.TimestampType == segstore.LogAppendTime {
				return "LogAppendTime"
			}
			return "CreateTime"
		},
		check: oneOf("CreateTime", "LogAppendTime"),
		apply: func(lc *segstore.LogConfig, v string) {
			lc.TimestampType = segstore.CreateTime
			if v == "LogAppendTime" {
				lc.TimestampType = segstore.LogAppendTime
			}
		}},
	{name: "min.cleanable.dirty.ratio", brokerName: "log.cleaner.min.cleanable.ratio", typ: kmsg.ConfigTypeDouble,
		doc:   "compacted topics: the share of uncleaned bytes at which the cleaner runs",
		def:   func(c *Config) string { return ratioString(c.Log.MinCleanableRatio) },
		check: ratioCheck,
		apply: func(lc *segstore.LogConfig, v string) { lc.MinCleanableRatio = parseRatio(v) }},
	{name: "min.compaction.lag.ms", brokerName: "log.cleaner.min.compaction.lag.ms", typ: kmsg.ConfigTypeLong,
		doc:   "compacted topics: records younger than this are not compacted",
		def:   func(c *Config) string { return durMs(c.Log.MinCompactionLagMs) },
		check: intRange(0, math.MaxInt64),
		apply: func(lc *segstore.LogConfig, v string) { lc.MinCompactionLagMs = msDur(v) }},
	{name: "min.insync.replicas", brokerName: "min.insync.replicas", typ: kmsg.ConfigTypeInt,
		doc:   "acks=all needs this many in-sync replicas",
		def:   func(c *Config) string { return strconv.Itoa(c.MinInsyncReplicas) },
		check: intRange(1, math.MaxInt32)},
	{name: "retention.bytes", brokerName: "log.retention.bytes", typ: kmsg.ConfigTypeLong,
		doc:   "size bound of a partition; -1: none",
		def:   func(c *Config) string { return itoa(c.Log.RetentionBytes) },
		check: intRange(math.MinInt64, math.MaxInt64),
		apply: func(lc *segstore.LogConfig, v string) { lc.RetentionBytes = atoi(v) }},
	{name: "retention.ms", brokerName: "log.retention.ms", typ: kmsg.ConfigTypeLong,
		doc:   "age bound of a segment; -1: keep forever",
		def:   func(c *Config) string { return durMs(c.Log.RetentionMs) },
		check: intRange(-1, math.MaxInt64),
		apply: func(lc *segstore.LogConfig, v string) { lc.RetentionMs = msDur(v) }},
	{name: "segment.bytes", brokerName: "log.segment.bytes", typ: kmsg.ConfigTypeInt,
		doc:   "segment size at which the log rolls",
		def:   func(c *Config) string { return itoa(c.Log.SegmentBytes) },
		check: intRange(14, math.MaxInt32),
		apply: func(lc *segstore.LogConfig, v string) { lc.SegmentBytes = atoi(v) }},
	{name: "segment.ms", brokerName: "log.roll.ms", typ: kmsg.ConfigTypeLong,
		doc:   "segment age at which the log rolls",
		def:   func(c *Config) string { return durMs(c.Log.SegmentMs) },
		check: intRange(1, math.MaxInt64),
		apply: func(lc *segstore.LogConfig, v string) { lc.SegmentMs = msDur(v) }},
	{name: "index.interval.bytes", brokerName: "log.index.interval.bytes", typ: kmsg.ConfigTypeInt,
		doc:   "bytes between offset index entries",
		def:   func(c *Config) string { return itoa(c.Log.IndexIntervalBytes) },
		check: intRange(0, math.MaxInt32),
		apply: func(lc *segstore.LogConfig, v string) { lc.IndexIntervalBytes = atoi(v) }},
	{name: "unclean.leader.election.enable", brokerName: "unclean.leader.election.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "may an out-of-sync replica become leader (single node: never arises)",
		def: func(c *Config) string {
			return strconv.FormatBool(c.Cluster != nil && c.Cluster.UncleanLeaderElection)
		},
		check: oneOf("true", "false")},
	{name: leaderThrottledReplicas, brokerName: leaderThrottledReplicas, typ: kmsg.ConfigTypeList, topicOnly: true,
		doc:   "replicas (partition:broker, or *) whose leader throttles non-ISR followers' fetches to leader.replication.throttled.rate (cluster mode)",
		def:   func(*Config) string { return "" },
		check: checkThrottledReplicas},
	{name: followerThrottledReplicas, brokerName: followerThrottledReplicas, typ: kmsg.ConfigTypeList, topicOnly: true,
		doc:   "replicas (partition:broker, or *) that, while out of the ISR, fetch at most follower.replication.throttled.rate (cluster mode)",
		def:   func(*Config) string { return "" },
		check: checkThrottledReplicas},
}

func findTopicConfig(name string) *configDef {
	for i := range topicConfigs {
		if topicConfigs[i].name == name {
			return &topicConfigs[i]
		}
	}
	return nil
}

// checkTopicConfig validates one name=value pair for a topic.
func checkTopicConfig(name string, value *string) error {
	d := findTopicConfig(name)
	if d == nil {
		return fmt.Errorf("unknown or unsupported topic config %q", name)
	}
	if value == nil {
		return fmt.Errorf("config %q: null value", name)
	}
	if err := d.check(strings.TrimSpace(*value)); err != nil {
		return fmt.Errorf("config %s=%q: %w", name, *value, err)
	}
	return nil
}

// logConfigFor is the LogConfig a partition of a topic with these overrides
// runs with.
func (c *Config) logConfigFor(overrides map[string]string) segstore.LogConfig {
	lc := c.Log
	for name, v := range overrides {
		if d := findTopicConfig(name); d != nil && d.apply != nil {
			d.apply(&lc, strings.TrimSpace(v))
		}
	}
	return lc
}

// topicConfigValue is a topic's effective value of a config and whether the
// topic overrides the broker default.
func (c *Config) topicConfigValue(d *configDef, overrides map[string]string) (string, bool) {
	if v, ok := overrides[d.name]; ok {
		return v, true
	}
	return d.def(c), false
}

func validateCleanupPolicy(v string) error {
	_, err := segstore.ParseCleanupPolicy(v)
	return err
}

// ratioCheck accepts a decimal in [0, 1] (min.cleanable.dirty.ratio).
func ratioCheck(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) {
		return fmt.Errorf("not a number")
	}
	if f < 0 || f > 1 {
		return fmt.Errorf("out of range [0, 1]")
	}
	return nil
}

// parseRatio turns a checked ratio into LogConfig's spelling: 0 (which
// LogConfig reads as "default") becomes the smallest positive ratio.
func parseRatio(v string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	return max(f, math.SmallestNonzeroFloat64)
}

// ratioString prints a ratio as Kafka does ("0.5"); parseRatio's stand-in
// for 0 prints as 0.
func ratioString(f float64) string {
	if f <= math.SmallestNonzeroFloat64 {
		return "0"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// lagMs prints max.compaction.lag.ms; its default, Long.MAX_VALUE ms, is
// stored as the largest Duration.
func lagMs(d time.Duration) string {
	if d >= segstore.MaxCompactionLagForever {
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	return durMs(d)
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
	}
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("out of range [%d, %d]", lo, hi)
		}
		return nil
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func atoi(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func durMs(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return itoa(d.Milliseconds())
}

// msDur converts a millisecond count; counts too large for a Duration
// (over ~292 years) saturate instead of wrapping to a tiny value, which would
// make retention delete everything.
func msDur(v string) time.Duration {
	n := atoi(v)
	switch {
	case n < 0:
		return -1
	case n > math.MaxInt64/int64(time.Millisecond):
		return math.MaxInt64
	}
	return time.Duration(n) * time.Millisecond
}

// trimConfigs returns overrides with surrounding space removed from values:
// values are checked trimmed, so they are stored trimmed too.
func trimConfigs(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strings.TrimSpace(v)
	}
	return out
}
