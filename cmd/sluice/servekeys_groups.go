package main

import (
	"math"
	"time"
)

// groupProps are the group coordinator's and idempotent producers' keys
// (Kafka's names and defaults).
var groupProps = []property{
	{name: "offsets.topic.num.partitions", def: "50", set: num(1, math.MaxInt32, func(c *serveConfig, n int64) { c.node.Groups.Partitions = int32(n) })},
	{name: "offsets.topic.segment.bytes", def: "104857600", set: num(14, math.MaxInt32, func(c *serveConfig, n int64) { c.node.OffsetsSegmentBytes = n })},
	{name: "offsets.retention.minutes", def: "10080", set: duration(1, time.Minute, func(c *serveConfig, d time.Duration) { c.node.Groups.OffsetsRetention = d })},
	{name: "offsets.retention.check.interval.ms", def: "600000", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.Groups.RetentionCheckInterval = d })},
	{name: "offset.metadata.max.bytes", def: "4096", set: num(0, math.MaxInt32, func(c *serveConfig, n int64) { c.node.Groups.MaxMetadataSize = int(n) })},
	{name: "group.min.session.timeout.ms", def: "6000", set: duration(0, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.Groups.MinSessionTimeout = d })},
	{name: "group.max.session.timeout.ms", def: "1800000", set: duration(0, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.Groups.MaxSessionTimeout = d })},
	{name: "group.initial.rebalance.delay.ms", def: "3000", set: duration(0, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.Groups.InitialRebalanceDelay = d })},
	{name: "group.max.size", def: "2147483647", set: num(1, math.MaxInt32, func(c *serveConfig, n int64) {
		if n == math.MaxInt32 {
			n = 0 // Kafka's default, Int.MaxValue, is group.Config's "unlimited"
		}
		c.node.Groups.MaxSize = int(n)
	})},
	// Idempotent producers (segstore keeps their state per partition).
	{name: "producer.id.expiration.ms", def: "86400000", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.ProducerIDExpiration = d })},
	{name: "producer.id.expiration.check.interval.ms", def: "600000", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.ProducerIDExpirationCheck = d })},
}

func init() { serveProps = append(serveProps, groupProps...) }
