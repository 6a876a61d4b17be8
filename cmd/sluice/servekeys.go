package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/segstore"
	"github.com/sluicemq/sluice/tuning"
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
	// The five listener keys only record what they say: pickListener
	// chooses the listener once every key is known.
	{name: "listeners", def: "PLAINTEXT://127.0.0.1:9092", set: func(c *serveConfig, v string) error {
		ls, err := parseListeners(v, false)
		if err != nil {
			return err
		}
		c.lis.listeners = ls
		return nil
	}},
	{name: "advertised.listeners", set: func(c *serveConfig, v string) error {
		if v == "" {
			c.lis.advertised = nil
			return nil
		}
		ls, err := parseListeners(v, true)
		if err != nil {
			return err
		}
		c.lis.advertised = ls
		return nil
	}},
	{name: "inter.broker.listener.name", set: func(c *serveConfig, v string) error {
		c.lis.interBroker = strings.ToUpper(v)
		return nil
	}},
	{name: "controller.listener.names", set: func(c *serveConfig, v string) error {
		c.lis.controller = map[string]bool{}
		for _, n := range splitList(v) {
			c.lis.controller[strings.ToUpper(n)] = true
		}
		return nil
	}},
	{name: "listener.security.protocol.map", def: defaultProtocolMap, set: func(c *serveConfig, v string) error {
		m, err := parseProtocolMap(v)
		c.lis.protocols = m
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
	// Any negative retention means no limit, as in Kafka. 0 would mean
	// "unset" (no limit) to segstore, the opposite of Kafka's "keep
	// nothing", so it is refused.
	{name: "log.retention.bytes", def: "-1", set: noZero("0 would keep nothing; not supported: use -1 for no limit or a positive size",
		num(math.MinInt64, math.MaxInt64, func(c *serveConfig, n int64) { c.node.Log.RetentionBytes = max(n, -1) }))},
	// Kafka allows 0 for both; segstore would read 0 as "use the default".
	{name: "log.index.interval.bytes", def: "4096", set: noZero("0 is not supported (sluice would silently use the default 4096): use 1 to index every batch",
		num(1, math.MaxInt32, func(c *serveConfig, n int64) { c.node.Log.IndexIntervalBytes = n }))},
	{name: "message.max.bytes", def: "1048588", set: noZero("0 would refuse every record; not supported: use a positive size",
		num(1, math.MaxInt32, func(c *serveConfig, n int64) { c.node.Log.MaxMessageBytes = n }))},
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
	// delete, compact, or both (compact,delete); the log cleaner's own keys
	// are in servekeys_cleaner.go.
	{name: "log.cleanup.policy", def: "delete", set: func(c *serveConfig, v string) error {
		if _, err := segstore.ParseCleanupPolicy(v); err != nil {
			return fmt.Errorf("want delete, compact, or compact,delete")
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
	{name: "numa.pinning", def: "auto", set: func(c *serveConfig, v string) error {
		m, err := tuning.ParsePinningMode(v)
		if err != nil || v == "" {
			return fmt.Errorf("want auto or off")
		}
		c.node.NumaPinning = m
		return nil
	}},
	{name: "metrics.listen", def: defaultMetricsListen, set: func(c *serveConfig, v string) error {
		if v != "" {
			if _, _, err := splitAddr(v); err != nil {
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

// noZero refuses 0 with why before set sees it.
func noZero(why string, set func(*serveConfig, string) error) func(*serveConfig, string) error {
	return func(c *serveConfig, v string) error {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n == 0 {
			return errors.New(why)
		}
		return set(c, v)
	}
}

func num(lo, hi int64, f func(c *serveConfig, n int64)) func(*serveConfig, string) error {
	return func(c *serveConfig, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			if lo == math.MinInt64 {
				return fmt.Errorf("must be at most %d", hi)
			}
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
// value as "no limit": every negative value is accepted and becomes -1.
func duration(lo int64, unit time.Duration, f func(c *serveConfig, d time.Duration)) func(*serveConfig, string) error {
	if lo < 0 {
		lo = math.MinInt64
	}
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

// defaultProtocolMap is Kafka's default listener.security.protocol.map.
const defaultProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"

// listenerConf is what the listener keys say; pickListener turns it into
// node.Config's Listen and Advertised.
type listenerConf struct {
	listeners   []listenerEntry   // listeners
	advertised  []listenerEntry   // advertised.listeners; nil when unset
	interBroker string            // inter.broker.listener.name, upper case
	controller  map[string]bool   // controller.listener.names, upper case
	protocols   map[string]string // listener.security.protocol.map; nil: the default
}

// listenerEntry is one NAME://host:port of a listener list.
type listenerEntry struct {
	name string // upper case, as Kafka normalizes it; PLAINTEXT when the entry has none
	addr string // host:port (host may be blank)
	raw  string // as written
}

// parseListeners parses a Kafka listener list. Entries without NAME://
// are PLAINTEXT listeners. Advertised entries need a port clients can dial
// and a host that is not the wildcard address; a blank host is kept blank
// (node advertises this machine's address for it).
func parseListeners(v string, advertised bool) ([]listenerEntry, error) {
	ls := splitList(v)
	if len(ls) == 0 {
		return nil, fmt.Errorf("no listener given")
	}
	var out []listenerEntry
	seen := map[string]bool{}
	for _, raw := range ls {
		e := listenerEntry{name: "PLAINTEXT", addr: raw, raw: raw}
		if name, rest, ok := strings.Cut(raw, "://"); ok {
			if name == "" {
				return nil, fmt.Errorf("%s: empty listener name", raw)
			}
			e.name, e.addr = strings.ToUpper(name), rest
		}
		host, port, err := splitAddr(e.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", raw, err)
		}
		if advertised {
			if port == 0 {
				return nil, fmt.Errorf("%s: an advertised listener needs a real port (1-65535)", raw)
			}
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				return nil, fmt.Errorf("%s: %s is not an address clients can connect to: name a reachable host, "+
					"or leave the host blank (%s://:%d) to advertise this machine's address", raw, host, e.name, port)
			}
		}
		if seen[e.name] {
			return nil, fmt.Errorf("listener name %s appears more than once", e.name)
		}
		seen[e.name] = true
		e.addr = net.JoinHostPort(host, strconv.Itoa(port))
		out = append(out, e)
	}
	return out, nil
}

// parseProtocolMap parses NAME:PROTOCOL,... (listener.security.protocol.map).
func parseProtocolMap(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range splitList(v) {
		name, proto, ok := strings.Cut(kv, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		switch {
		case !ok || name == "":
			return nil, fmt.Errorf("%q: want NAME:PROTOCOL", kv)
		case proto != "PLAINTEXT" && proto != "SSL" && proto != "SASL_PLAINTEXT" && proto != "SASL_SSL":
			return nil, fmt.Errorf("%q: protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", kv, proto)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("listener %s is mapped twice", name)
		}
		m[name] = proto
	}
	return m, nil
}

// pickListener chooses the one listener sluice serves, by name as Kafka
// does, not by position: listeners named in controller.listener.names are
// skipped; inter.broker.listener.name wins if set, else the one named
// PLAINTEXT, else the first other. It must be PLAINTEXT per
// listener.security.protocol.map. The advertised.listeners entry of the
// same name is what clients are told; without one, the listener's own
// address. Others are ignored with a warning. On error it returns the key
// the error is about.
func (c *serveConfig) pickListener() (string, error) {
	l := &c.lis
	if l.listeners == nil { // not set: the default
		l.listeners, _ = parseListeners(findProp("listeners").def, false)
	}
	var chosen *listenerEntry
	if l.interBroker != "" {
		if l.controller[l.interBroker] {
			return "inter.broker.listener.name", fmt.Errorf("%s is also in controller.listener.names", l.interBroker)
		}
		for i := range l.listeners {
			if l.listeners[i].name == l.interBroker {
				chosen = &l.listeners[i]
			}
		}
		if chosen == nil {
			return "inter.broker.listener.name", fmt.Errorf("no listener named %s in listeners", l.interBroker)
		}
	} else {
		for i := range l.listeners {
			e := &l.listeners[i]
			if l.controller[e.name] {
				continue
			}
			if chosen == nil || e.name == "PLAINTEXT" && chosen.name != "PLAINTEXT" {
				chosen = e
			}
		}
		if chosen == nil {
			return "listeners", fmt.Errorf("every listener is a controller listener (controller.listener.names); sluice needs a broker listener")
		}
	}
	protocols := l.protocols
	if protocols == nil {
		protocols, _ = parseProtocolMap(defaultProtocolMap)
	}
	proto, ok := protocols[chosen.name]
	if !ok {
		return "listener.security.protocol.map", fmt.Errorf("no security protocol for listener %s: add %s:PLAINTEXT", chosen.name, chosen.name)
	}
	if proto != "PLAINTEXT" {
		return "listeners", fmt.Errorf("listener %s uses security protocol %s; sluice serves PLAINTEXT only (SSL and SASL are not supported yet)", chosen.raw, proto)
	}
	c.node.Listen = chosen.addr
	if others := otherListeners(l.listeners, chosen.name); others != "" {
		c.warn("sluice serves one listener; ignoring the others", "key", "listeners", "using", chosen.raw, "ignored", others)
	}
	c.node.Advertised = ""
	if l.advertised == nil {
		return "", nil
	}
	using := "(none)"
	for _, e := range l.advertised {
		if e.name == chosen.name {
			c.node.Advertised, using = e.addr, e.raw
		}
	}
	if c.node.Advertised == "" {
		c.warn("advertised.listeners has no entry for the listener served; advertising the listener's own address",
			"listener", chosen.name)
	}
	if others := otherListeners(l.advertised, chosen.name); others != "" {
		c.warn("sluice serves one listener; ignoring the others", "key", "advertised.listeners", "using", using, "ignored", others)
	}
	return "", nil
}

// otherListeners lists the entries of ls not named name, comma-separated.
func otherListeners(ls []listenerEntry, name string) string {
	var out []string
	for _, e := range ls {
		if e.name != name {
			out = append(out, e.raw)
		}
	}
	return strings.Join(out, ",")
}

// splitAddr validates [NAME://]host:port and returns host and port. The port
// is decimal digits only, 0-65535.
func splitAddr(v string) (string, int, error) {
	if _, rest, ok := strings.Cut(v, "://"); ok {
		v = rest
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port: %v", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || strings.TrimLeft(port, "0123456789") != "" || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q: want 0-65535", port)
	}
	return host, p, nil
}
