package main

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/segstore"
)

// defaultMetricsListen is where /metrics and /debug/pprof are served unless
// metrics.listen says otherwise. Loopback only: pprof must not be public.
const defaultMetricsListen = "127.0.0.1:9644"

// property is one server.properties key `sluice serve` understands.
type property struct {
	name string
	def  string // the default, as config/server.properties documents it ("" = unset)
	// over lists keys that win over this one when both are set, as in
	// Kafka (log.retention.ms over .minutes over .hours). A shadowed value
	// is still validated.
	over []string
	set  func(c *serveConfig, v string) error
}

var serveProps = []property{
	{name: "listeners", def: "PLAINTEXT://127.0.0.1:9092", set: func(c *serveConfig, v string) error {
		addr, err := firstListener(c, "listeners", v)
		c.node.Listen = addr
		return err
	}},
	{name: "advertised.listeners", set: func(c *serveConfig, v string) error {
		if v == "" {
			c.node.Advertised = ""
			return nil
		}
		addr, err := firstListener(c, "advertised.listeners", v)
		if err == nil && strings.HasSuffix(addr, ":0") {
			err = fmt.Errorf("an advertised listener needs a real port")
		}
		c.node.Advertised = addr
		return err
	}},
	{name: "log.dirs", def: "sluice-data", set: setDataDir},
	{name: "log.dir", over: []string{"log.dirs"}, set: setDataDir},
	{name: "node.id", def: "1", set: num(0, math.MaxInt32, func(c *serveConfig, n int64) { c.node.NodeID = int32(n) })},
	{name: "broker.id", over: []string{"node.id"}, set: num(0, math.MaxInt32, func(c *serveConfig, n int64) { c.node.NodeID = int32(n) })},
	{name: "cluster.id", set: func(c *serveConfig, v string) error { c.node.ClusterID = v; return nil }},
	{name: "broker.rack", set: func(c *serveConfig, v string) error { c.node.Rack = v; return nil }},
	{name: "num.partitions", def: "1", set: num(1, math.MaxInt32, func(c *serveConfig, n int64) { c.node.NumPartitions = int32(n) })},
	{name: "default.replication.factor", def: "1", set: num(1, math.MaxInt16, func(c *serveConfig, n int64) { c.node.DefaultReplicationFactor = int16(n) })},
	{name: "auto.create.topics.enable", def: "true", set: boolean(func(c *serveConfig, b bool) { c.node.AutoCreateTopics = b })},
	{name: "delete.topic.enable", def: "true", set: boolean(func(c *serveConfig, b bool) { c.node.DeleteTopicEnable = b })},
	{name: "min.insync.replicas", def: "1", set: num(1, math.MaxInt32, func(c *serveConfig, n int64) { c.node.MinInsyncReplicas = int(n) })},
	{name: "log.segment.bytes", def: "1073741824", set: num(14, math.MaxInt32, func(c *serveConfig, n int64) { c.node.Log.SegmentBytes = n })},
	{name: "log.roll.ms", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.Log.SegmentMs = d })},
	{name: "log.roll.hours", def: "168", over: []string{"log.roll.ms"}, set: duration(1, time.Hour, func(c *serveConfig, d time.Duration) { c.node.Log.SegmentMs = d })},
	{name: "log.retention.ms", set: duration(-1, time.Millisecond, setRetention)},
	{name: "log.retention.minutes", over: []string{"log.retention.ms"}, set: duration(-1, time.Minute, setRetention)},
	{name: "log.retention.hours", def: "168", over: []string{"log.retention.ms", "log.retention.minutes"}, set: duration(-1, time.Hour, setRetention)},
	{name: "log.retention.bytes", def: "-1", set: num(-1, math.MaxInt64, func(c *serveConfig, n int64) { c.node.Log.RetentionBytes = n })},
	{name: "log.index.interval.bytes", def: "4096", set: num(0, math.MaxInt32, func(c *serveConfig, n int64) { c.node.Log.IndexIntervalBytes = n })},
	{name: "message.max.bytes", def: "1048588", set: num(0, math.MaxInt32, func(c *serveConfig, n int64) { c.node.Log.MaxMessageBytes = n })},
	{name: "log.message.timestamp.type", def: "CreateTime", set: func(c *serveConfig, v string) error {
		switch v {
		case "CreateTime":
			c.node.Log.TimestampType = segstore.CreateTime
		case "LogAppendTime":
			c.node.Log.TimestampType = segstore.LogAppendTime
		default:
			return fmt.Errorf("want CreateTime or LogAppendTime")
		}
		return nil
	}},
	{name: "log.cleanup.policy", def: "delete", set: func(c *serveConfig, v string) error {
		for _, p := range strings.Split(v, ",") {
			switch strings.TrimSpace(p) {
			case "delete":
			case "compact":
				return fmt.Errorf("log compaction is not implemented yet; use delete")
			default:
				return fmt.Errorf("want delete")
			}
		}
		c.node.CleanupPolicy = v
		return nil
	}},
	{name: "log.flush.policy", def: "ack", set: func(c *serveConfig, v string) error {
		p, err := segstore.ParseFlushPolicy(v)
		if err != nil {
			return fmt.Errorf("want ack, interval or os")
		}
		c.node.Flush = p
		return nil
	}},
	{name: "log.flush.interval.messages", set: num(1, math.MaxInt64, func(c *serveConfig, n int64) {
		c.node.FlushMessages = n
		if n == math.MaxInt64 { // Kafka's default spelled out: no bound
			c.node.FlushMessages = 0
		}
	})},
	{name: "log.flush.interval.ms", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.FlushEvery = d })},
	{name: "log.flush.offset.checkpoint.interval.ms", def: "60000", set: duration(1, time.Millisecond, func(c *serveConfig, d time.Duration) { c.node.CheckpointEvery = d })},
	{name: "io.engine", def: "auto", set: func(c *serveConfig, v string) error {
		if v != "auto" && v != "uring" && v != "sync" {
			return fmt.Errorf("want auto, uring or sync")
		}
		c.node.IOEngine = v
		return nil
	}},
	{name: "socket.request.max.bytes", def: "104857600", set: num(1, math.MaxInt32, func(c *serveConfig, n int64) { c.node.Net.MaxFrameSize = int32(n) })},
	{name: "queued.max.requests", def: "100", set: num(1, 1<<20, func(c *serveConfig, n int64) { c.node.Net.MaxInFlightRequests = int(n) })},
	{name: "num.network.threads", set: num(1, 1024, func(c *serveConfig, n int64) { c.node.Net.Loops = int(n) })},
	{name: "metrics.listen", def: defaultMetricsListen, set: func(c *serveConfig, v string) error {
		if v != "" {
			if _, err := splitAddr(v); err != nil {
				return err
			}
		}
		c.metricsListen = v
		return nil
	}},
}

func findProp(name string) *property {
	for i := range serveProps {
		if serveProps[i].name == name {
			return &serveProps[i]
		}
	}
	return nil
}

func num(lo, hi int64, f func(c *serveConfig, n int64)) func(*serveConfig, string) error {
	return func(c *serveConfig, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			if hi == math.MaxInt64 {
				return fmt.Errorf("must be at least %d", lo)
			}
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		f(c, n)
		return nil
	}
}

// duration parses a count of unit; lo is -1 where Kafka reads any negative
// value as "no limit".
func duration(lo int64, unit time.Duration, f func(c *serveConfig, d time.Duration)) func(*serveConfig, string) error {
	return num(lo, math.MaxInt64/int64(unit), func(c *serveConfig, n int64) {
		if n < 0 {
			f(c, -1)
			return
		}
		f(c, time.Duration(n)*unit)
	})
}

// setRetention: 0 means "delete at once" in Kafka but "unset" in
// segstore.LogConfig, so it becomes the smallest real bound, 1 ms.
func setRetention(c *serveConfig, d time.Duration) {
	if d == 0 {
		d = time.Millisecond
	}
	c.node.Log.RetentionMs = d
}

func boolean(f func(c *serveConfig, b bool)) func(*serveConfig, string) error {
	return func(c *serveConfig, v string) error {
		switch strings.ToLower(v) {
		case "true":
			f(c, true)
		case "false":
			f(c, false)
		default:
			return fmt.Errorf("want true or false")
		}
		return nil
	}
}

func setDataDir(c *serveConfig, v string) error {
	dirs := splitList(v)
	if len(dirs) == 0 {
		return fmt.Errorf("no directory given")
	}
	if len(dirs) > 1 {
		c.warn("sluice uses one data directory; ignoring the others", "using", dirs[0], "ignored", strings.Join(dirs[1:], ","))
	}
	c.node.DataDir = dirs[0]
	return nil
}

// firstListener takes the first entry of a Kafka listener list
// (NAME://host:port,...) and returns its host:port. Listener names are not
// mapped through listener.security.protocol.map: every listener serves
// PLAINTEXT, and the security protocols' own names are refused.
func firstListener(c *serveConfig, key, v string) (string, error) {
	ls := splitList(v)
	if len(ls) == 0 {
		return "", fmt.Errorf("no listener given")
	}
	if len(ls) > 1 {
		c.warn("sluice serves one listener; ignoring the others", "key", key, "using", ls[0], "ignored", strings.Join(ls[1:], ","))
	}
	name, _, found := strings.Cut(ls[0], "://")
	if found {
		switch strings.ToUpper(name) {
		case "SSL", "SASL_SSL", "SASL_PLAINTEXT":
			return "", fmt.Errorf("%s listeners are not supported yet; use PLAINTEXT", name)
		}
	}
	return splitAddr(ls[0])
}

// splitAddr validates [NAME://]host:port and returns host:port.
func splitAddr(v string) (string, error) {
	if _, rest, ok := strings.Cut(v, "://"); ok {
		v = rest
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("want host:port: %v", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	return net.JoinHostPort(host, port), nil
}
