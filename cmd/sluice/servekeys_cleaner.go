package main

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sluicemq/sluice/segstore"
)

// cleanerProps are the log cleaner's keys (log compaction), with Kafka's
// names, defaults and ranges. The log.cleaner.delete.retention.ms,
// min.cleanable.ratio and min/max.compaction.lag.ms keys are the broker-wide
// defaults of the topic configs delete.retention.ms, ... (node.Config.Log).
var cleanerProps = []property{
	{name: "log.cleaner.enable", def: "true", set: boolean(func(c *serveConfig, b bool) { c.node.CleanerEnable = b })},
	// Kafka allows 0: a cleaner that never pauses. Refused rather than spun.
	{name: "log.cleaner.backoff.ms", def: "15000", set: noZero("0 would make the cleaner spin without pause; use 1 or more",
		duration(0, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.CleanerBackoff = d }))},
	{name: "log.cleaner.dedupe.buffer.size", def: "134217728", set: num(1, math.MaxInt64, func(c *serveConfig, n int64) { c.node.CleanerDedupeBytes = n })},
	// 0 (drop tombstones at the first cleaning) is kept as 1 ms: segstore
	// reads 0 as "default".
	{name: "log.cleaner.delete.retention.ms", def: "86400000", set: duration(0, time.Millisecond, func(c *serveConfig, d time.Duration) {
		c.node.Log.DeleteRetentionMs = max(d, time.Millisecond)
	})},
	{name: "log.cleaner.min.cleanable.ratio", def: "0.5", set: func(c *serveConfig, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return fmt.Errorf("want a number between 0 and 1")
		}
		c.node.Log.MinCleanableRatio = max(f, math.SmallestNonzeroFloat64) // 0 is segstore's "default"
		return nil
	}},
	{name: "log.cleaner.min.compaction.lag.ms", def: "0", set: duration(0, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.Log.MinCompactionLagMs = d })},
	// The default, Long.MAX_VALUE ms, does not fit a Duration: anything
	// that large is "never".
	{name: "log.cleaner.max.compaction.lag.ms", def: "9223372036854775807", set: num(1, math.MaxInt64, func(c *serveConfig, n int64) {
		c.node.Log.MaxCompactionLagMs = segstore.MaxCompactionLagForever
		if n <= math.MaxInt64/int64(time.Millisecond) {
			c.node.Log.MaxCompactionLagMs = time.Duration(n) * time.Millisecond
		}
	})},
}

func init() { serveProps = append(serveProps, cleanerProps...) }
