package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/netpoll"
	"github.com/sluicemq/sluice/node"
	"github.com/sluicemq/sluice/segstore"
)

// resolveFile writes props to a temp server.properties and resolves it with
// env and the extra args.
func resolveFile(t *testing.T, props string, env []string, args ...string) (*serveConfig, error) {
	t.Helper()
	if props != "" {
		p := filepath.Join(t.TempDir(), "server.properties")
		if err := os.WriteFile(p, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	}
	return resolveServeConfig(args, env)
}

func mustResolve(t *testing.T, props string, env []string, args ...string) *serveConfig {
	t.Helper()
	c, err := resolveFile(t, props, env, args...)
	if err != nil {
		t.Fatalf("resolve(%q, %v, %v): %v", props, env, args, err)
	}
	return c
}

func TestServeConfigZero(t *testing.T) {
	c := mustResolve(t, "", nil)
	if c.node.Listen != "127.0.0.1:9092" || c.node.DataDir != "sluice-data" || c.node.Advertised != "" {
		t.Fatalf("zero config: listen %q data %q advertised %q; want 127.0.0.1:9092, sluice-data, derived",
			c.node.Listen, c.node.DataDir, c.node.Advertised)
	}
	if !reflect.DeepEqual(c.node, node.DefaultConfig()) {
		t.Fatalf("zero config differs from node.DefaultConfig:\n%+v\n%+v", c.node, node.DefaultConfig())
	}
	if c.metricsListen != defaultMetricsListen || c.logFormat != "text" || c.shutdownTimeout != 30*time.Second {
		t.Fatalf("zero config: metrics %q format %q shutdown %v", c.metricsListen, c.logFormat, c.shutdownTimeout)
	}
	if len(c.warnings) != 0 {
		t.Fatalf("zero config warns: %v", c.warnings)
	}
}

// TestServeConfigDocumented: every key's documented default, set
// explicitly, changes nothing, and config/server.properties lists every key
// with that default.
func TestServeConfigDocumented(t *testing.T) {
	var args []string
	for _, p := range serveProps {
		if p.def != "" {
			args = append(args, "--override", p.name+"="+p.def)
		}
	}
	c := mustResolve(t, "", nil, args...)
	// netpoll fills zero limits with its defaults; the table names them.
	want := node.DefaultConfig()
	want.Net.MaxFrameSize, want.Net.MaxInFlightRequests = netpoll.DefaultMaxFrameSize, 100
	if !reflect.DeepEqual(c.node, want) {
		t.Fatalf("documented defaults differ from node.DefaultConfig:\ngot  %+v\nwant %+v", c.node, want)
	}
	data, err := os.ReadFile("../../config/server.properties")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range serveProps {
		if !strings.Contains(string(data), "\n#"+p.name+"="+p.def+"\n") {
			t.Errorf("config/server.properties lacks the line #%s=%s", p.name, p.def)
		}
	}
	// Uncommented, the example loads without complaint.
	active := regexp.MustCompile(`(?m)^#([a-z.]+=\S)`).ReplaceAllString(string(data), "$1")
	c = mustResolve(t, active, nil)
	if len(c.warnings) != 0 || !reflect.DeepEqual(c.node, want) {
		t.Fatalf("uncommented example: warnings %v, config %+v", c.warnings, c.node)
	}
}

func TestServeConfigPrecedence(t *testing.T) {
	file := "listeners=PLAINTEXT://127.0.0.1:19092\nlog.dirs=/from/file\nnum.partitions=3\nbroker.rack=file\n"
	env := []string{"SLUICE_LOG_DIRS=/from/env", "SLUICE_NUM_PARTITIONS=5", "SLUICE_KILL_CYCLES=9", "PATH=/bin"}
	c := mustResolve(t, file, env, "--override", "num.partitions=7")
	if c.node.Listen != "127.0.0.1:19092" || c.node.DataDir != "/from/env" || c.node.NumPartitions != 7 || c.node.Rack != "file" {
		t.Fatalf("got listen %q dir %q partitions %d rack %q", c.node.Listen, c.node.DataDir, c.node.NumPartitions, c.node.Rack)
	}
	// Flags apply in command-line order; named flags and --override alike.
	c = mustResolve(t, file, env, "--data-dir", "/a", "--override", "log.dirs=/b", "--log-dirs", "/c")
	if c.node.DataDir != "/c" {
		t.Fatalf("data dir %q, want the last flag's /c", c.node.DataDir)
	}
	c = mustResolve(t, "", nil, "--node-id", "4", "--advertised-listeners", "PLAINTEXT://kafka.example:9093", "--metrics-listen", "")
	if c.node.NodeID != 4 || c.node.Advertised != "kafka.example:9093" || c.metricsListen != "" {
		t.Fatalf("node %d advertised %q metrics %q", c.node.NodeID, c.node.Advertised, c.metricsListen)
	}
	c = mustResolve(t, "", []string{"SLUICE_LOG_LEVEL=debug", "SLUICE_LOG_FORMAT=json"})
	if c.logLevel.String() != "DEBUG" || c.logFormat != "json" {
		t.Fatalf("log level %v format %q from env", c.logLevel, c.logFormat)
	}
}

func TestServeConfigDurations(t *testing.T) {
	f := func(props string, retention, roll time.Duration) {
		t.Helper()
		c := mustResolve(t, props, nil)
		if c.node.Log.RetentionMs != retention || c.node.Log.SegmentMs != roll {
			t.Fatalf("%q: retention %v roll %v, want %v %v", props, c.node.Log.RetentionMs, c.node.Log.SegmentMs, retention, roll)
		}
	}
	week := 7 * 24 * time.Hour
	f("log.retention.hours=1", time.Hour, week)
	f("log.retention.hours=1\nlog.retention.minutes=5", 5*time.Minute, week)
	f("log.retention.minutes=5\nlog.retention.hours=1\nlog.retention.ms=250", 250*time.Millisecond, week)
	f("log.retention.ms=-1\nlog.retention.hours=1", -1, week)
	f("log.retention.hours=-1", -1, week)
	f("log.retention.hours=-2", -1, week) // Kafka: any negative value is no limit
	f("log.retention.ms=-1000", -1, week)
	f("log.retention.ms=0", time.Millisecond, week)
	f("log.roll.hours=2", week, 2*time.Hour)
	f("log.roll.hours=2\nlog.roll.ms=1500", week, 1500*time.Millisecond)
	// A shadowed value must still be valid.
	if _, err := resolveFile(t, "log.retention.ms=5\nlog.retention.hours=x", nil); err == nil ||
		!strings.Contains(err.Error(), "log.retention.hours") {
		t.Fatalf("shadowed bad value: err %v", err)
	}
}

func TestServeConfigValues(t *testing.T) {
	c := mustResolve(t, `
num.partitions=6
default.replication.factor=3
auto.create.topics.enable=FALSE
delete.topic.enable=false
min.insync.replicas=2
log.segment.bytes=1048576
log.retention.bytes=1000000
log.index.interval.bytes=1024
message.max.bytes=2000000
log.message.timestamp.type=LogAppendTime
log.flush.policy=interval
log.flush.interval.messages=1000
log.flush.interval.ms=50
log.flush.offset.checkpoint.interval.ms=5000
io.engine=sync
socket.request.max.bytes=1000000
queued.max.requests=16
num.network.threads=3
cluster.id=abc
broker.id=9
`, nil)
	want := node.DefaultConfig()
	want.NumPartitions, want.DefaultReplicationFactor, want.MinInsyncReplicas = 6, 3, 2
	want.AutoCreateTopics, want.DeleteTopicEnable = false, false
	want.Log.SegmentBytes, want.Log.RetentionBytes, want.Log.IndexIntervalBytes = 1<<20, 1000000, 1024
	want.Log.MaxMessageBytes, want.Log.TimestampType = 2000000, segstore.LogAppendTime
	want.Flush, want.FlushMessages, want.FlushEvery = segstore.FlushInterval, 1000, 50*time.Millisecond
	want.CheckpointEvery, want.IOEngine = 5*time.Second, "sync"
	want.Net.MaxFrameSize, want.Net.MaxInFlightRequests, want.Net.Loops = 1000000, 16, 3
	want.ClusterID, want.NodeID = "abc", 9
	if !reflect.DeepEqual(c.node, want) {
		t.Fatalf("got  %+v\nwant %+v", c.node, want)
	}
}

func TestServeConfigErrors(t *testing.T) {
	f := func(props string, want ...string) {
		t.Helper()
		_, err := resolveFile(t, props, nil)
		if err == nil {
			t.Fatalf("%q: no error", props)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%q: error %q lacks %q", props, err, w)
			}
		}
	}
	f("num.partitions=0", "num.partitions", "between 1 and")
	f("num.partitions=", "num.partitions", "not an integer")
	f("auto.create.topics.enable=yes", "auto.create.topics.enable", "true or false")
	f("log.segment.bytes=10", "log.segment.bytes")
	f("log.flush.policy=never", "log.flush.policy", "ack, interval or os")
	f("io.engine=epoll", "io.engine")
	f("log.cleanup.policy=archive", "log.cleanup.policy", "compact")
	f("log.cleaner.min.cleanable.ratio=1.5", "log.cleaner.min.cleanable.ratio", "between 0 and 1")
	f("log.cleaner.backoff.ms=0", "log.cleaner.backoff.ms", "spin")
	f("log.message.timestamp.type=Now", "log.message.timestamp.type")
	f("listeners=SSL://:9093", "listeners", "SSL")
	f("listeners=localhost", "listeners", "host:port")
	f("advertised.listeners=PLAINTEXT://h:0", "advertised.listeners", "real port")
	f("advertised.listeners=PLAINTEXT://h:00", "advertised.listeners", "real port")
	f("advertised.listeners=PLAINTEXT://h:65536", "advertised.listeners", "bad port")
	f("advertised.listeners=PLAINTEXT://0.0.0.0:9092", "advertised.listeners", "0.0.0.0", "not an address clients can connect to")
	f("advertised.listeners=PLAINTEXT://[::]:9092", "advertised.listeners", "not an address clients can connect to")
	f("advertised.listeners=h:+80", "advertised.listeners", "bad port")
	f("listeners=PLAINTEXT://h:-0", "listeners", "bad port")
	f("listeners=PLAINTEXT://h:1,plaintext://h:2", "listeners", "more than once")
	f("log.retention.bytes=0", "log.retention.bytes", "0 would keep nothing", "-1 for no limit")
	f("log.index.interval.bytes=0", "log.index.interval.bytes", "use 1")
	f("message.max.bytes=0", "message.max.bytes", "refuse every record")
	f("message.max.bytes=-5", "message.max.bytes", "between 1 and")
	f("metrics.listen=nope", "metrics.listen")
	f("node.id=1\nbroker.id=2", "node.id", "broker.id", "disagree")
	f("num.partitions=0\nmin.insync.replicas=0", "num.partitions", "min.insync.replicas")
	f("\n\nlog.dirz=/x\nnum.partitions=1", "unknown properties", "log.dirz", ":3")
	f("log.retention.bytes=x", "log.retention.bytes", "not an integer")
	for _, args := range [][]string{
		{"--override", "bogus"},
		{"--override", "nosuch.key=1"},
		{"--log-level", "loud"},
		{"--log-format", "xml"},
		{"--config", "/nonexistent/server.properties"},
		{"stray"},
	} {
		if _, err := resolveServeConfig(args, nil); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestServeConfigKafkaFile: Kafka's own KRaft server.properties loads, with
// one warning naming what sluice ignores.
func TestServeConfigKafkaFile(t *testing.T) {
	c := mustResolve(t, `# Licensed to the Apache Software Foundation (ASF)
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
`, nil)
	if c.node.Listen != ":9092" || c.node.Advertised != "localhost:9092" || c.node.DataDir != "/tmp/kraft-combined-logs" ||
		c.node.Net.Loops != 3 || c.node.Log.RetentionMs != 168*time.Hour {
		t.Fatalf("got %+v", c.node)
	}
	var msgs []string
	for _, w := range c.warnings {
		msgs = append(msgs, fmt.Sprint(w.msg, w.args))
	}
	all := strings.Join(msgs, "\n")
	for _, k := range []string{"process.roles", "controller.quorum.bootstrap.servers", "num.io.threads", "offsets.topic.replication.factor",
		"CONTROLLER://:9093", "CONTROLLER://localhost:9093"} {
		if !strings.Contains(all, k) {
			t.Errorf("warnings lack %s:\n%s", k, all)
		}
	}
	if len(c.warnings) != 4 { // ignored keys, extra listener, extra advertised listener, standalone despite roles
		t.Errorf("%d warnings, want 4:\n%s", len(c.warnings), all)
	}
}

func TestServeConfigRetentionBytes(t *testing.T) {
	for v, want := range map[string]int64{"-1": -1, "-2": -1, "-9223372036854775808": -1, "1": 1, "1000000": 1000000} {
		c := mustResolve(t, "log.retention.bytes="+v, nil)
		if c.node.Log.RetentionBytes != want {
			t.Errorf("log.retention.bytes=%s: got %d, want %d", v, c.node.Log.RetentionBytes, want)
		}
	}
}

// TestServeConfigListeners: the listener served is chosen by name, not by
// position, and advertised.listeners is matched to it by name.
func TestServeConfigListeners(t *testing.T) {
	type want struct {
		listen, advertised string
		warnings           []string // substrings, one per warning, in order
	}
	f := func(props string, w want) {
		t.Helper()
		c := mustResolve(t, props, nil)
		if c.node.Listen != w.listen || c.node.Advertised != w.advertised {
			t.Errorf("%q: listen %q advertised %q, want %q %q", props, c.node.Listen, c.node.Advertised, w.listen, w.advertised)
		}
		var got []string
		for _, x := range c.warnings {
			got = append(got, fmt.Sprint(x.msg, x.args))
		}
		if len(got) != len(w.warnings) {
			t.Errorf("%q: warnings %q, want %d matching %q", props, got, len(w.warnings), w.warnings)
			return
		}
		for i := range got {
			if !strings.Contains(got[i], w.warnings[i]) {
				t.Errorf("%q: warning %q lacks %q", props, got[i], w.warnings[i])
			}
		}
	}
	// The controller listener first: skipped by name.
	f("listeners=CONTROLLER://:9093,PLAINTEXT://:9092\ncontroller.listener.names=CONTROLLER\n"+
		"advertised.listeners=CONTROLLER://c:9093,PLAINTEXT://p:9092",
		want{":9092", "p:9092", []string{"ignored CONTROLLER://:9093", "ignored CONTROLLER://c:9093"}})
	// PLAINTEXT wins over an earlier listener of another name.
	f("listeners=INTERNAL://127.0.0.2:9094,PLAINTEXT://127.0.0.1:9092\nlistener.security.protocol.map=INTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		want{"127.0.0.1:9092", "", []string{"ignored INTERNAL://127.0.0.2:9094"}})
	// inter.broker.listener.name wins over PLAINTEXT; names are case-insensitive.
	f("listeners=PLAINTEXT://:9092,internal://:9094\ninter.broker.listener.name=Internal\n"+
		"listener.security.protocol.map=INTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT\n"+
		"advertised.listeners=PLAINTEXT://p:9092,INTERNAL://i:9094",
		want{":9094", "i:9094", []string{"ignored PLAINTEXT://:9092", "ignored PLAINTEXT://p:9092"}})
	// Without PLAINTEXT or inter.broker.listener.name: the first non-controller one.
	f("listeners=CONTROLLER://:9093,A://:1,B://:2\ncontroller.listener.names=CONTROLLER\nlistener.security.protocol.map=A:PLAINTEXT,B:SSL,CONTROLLER:PLAINTEXT",
		want{":1", "", []string{"ignored CONTROLLER://:9093,B://:2"}})
	// An SSL listener beside the PLAINTEXT one is ignored, not refused.
	f("listeners=SSL://:9093,PLAINTEXT://:9092", want{":9092", "", []string{"ignored SSL://:9093"}})
	// No advertised entry of the served listener's name: the listener's own address.
	f("listeners=PLAINTEXT://:9092\nadvertised.listeners=EXTERNAL://e:1",
		want{":9092", "", []string{"no entry for the listener served", "ignored EXTERNAL://e:1"}})
	// A blank advertised host is passed through for node to resolve.
	f("advertised.listeners=PLAINTEXT://:19093", want{"127.0.0.1:9092", ":19093", nil})
	f("advertised.listeners=kafka.example:19093", want{"127.0.0.1:9092", "kafka.example:19093", nil})
	// Without a scheme, an entry is PLAINTEXT.
	f("listeners=127.0.0.1:0", want{"127.0.0.1:0", "", nil})
	f("listeners=[::1]:9092\nadvertised.listeners=PLAINTEXT://[::1]:9092", want{"[::1]:9092", "[::1]:9092", nil})

	bad := func(props string, wants ...string) {
		t.Helper()
		_, err := resolveFile(t, props, nil)
		if err == nil {
			t.Errorf("%q: no error", props)
			return
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", props, err, w)
			}
		}
	}
	bad("listeners=SSL://:9093", "listeners", "SSL", "PLAINTEXT only")
	bad("listeners=SASL_PLAINTEXT://:9093", "SASL_PLAINTEXT", "PLAINTEXT only")
	bad("listeners=EXTERNAL://:9093\nlistener.security.protocol.map=EXTERNAL:SASL_SSL", "listeners", "EXTERNAL", "SASL_SSL")
	bad("listeners=INTERNAL://:9093", "listener.security.protocol.map", "INTERNAL:PLAINTEXT")
	bad("listeners=PLAINTEXT://:9092\ninter.broker.listener.name=REPLICATION", "inter.broker.listener.name", "REPLICATION")
	bad("listeners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER", "listeners", "controller listener")
	bad("listeners=CONTROLLER://:9093,PLAINTEXT://:9092\ncontroller.listener.names=CONTROLLER\ninter.broker.listener.name=CONTROLLER",
		"inter.broker.listener.name", "controller.listener.names")
	bad("listener.security.protocol.map=PLAINTEXT", "listener.security.protocol.map", "NAME:PROTOCOL")
	bad("listener.security.protocol.map=PLAINTEXT:TLS", "listener.security.protocol.map", "TLS")
	bad("listeners=://:9092", "listeners", "empty listener name")
	// The flag layer's listener replaces the file's; the file's advertised
	// entry still matches it by name.
	c := mustResolve(t, "listeners=PLAINTEXT://:9092\nadvertised.listeners=PLAINTEXT://p:9092", nil, "--listeners", "127.0.0.1:0")
	if c.node.Listen != "127.0.0.1:0" || c.node.Advertised != "p:9092" {
		t.Errorf("listen %q advertised %q", c.node.Listen, c.node.Advertised)
	}
}

// TestServeConfigSynonymLayers: the more specific synonym wins whatever its
// layer, as in Kafka, with a warning when the loser came from a later layer.
func TestServeConfigSynonymLayers(t *testing.T) {
	shadowWarnings := func(c *serveConfig) []string {
		var out []string
		for _, w := range c.warnings {
			if strings.Contains(w.msg, "synonym") {
				out = append(out, fmt.Sprint(w.args))
			}
		}
		return out
	}
	c := mustResolve(t, "log.retention.ms=250", []string{"SLUICE_LOG_RETENTION_HOURS=1"}, "--override", "log.retention.minutes=5")
	if c.node.Log.RetentionMs != 250*time.Millisecond {
		t.Fatalf("retention %v, want the file's log.retention.ms", c.node.Log.RetentionMs)
	}
	ws := shadowWarnings(c)
	if len(ws) != 2 || !strings.Contains(ws[0], "log.retention.minutes=5 (from --override)") ||
		!strings.Contains(ws[1], "log.retention.hours=1 (from $SLUICE_LOG_RETENTION_HOURS)") ||
		!strings.Contains(ws[0], "log.retention.ms=250") {
		t.Fatalf("warnings %q", ws)
	}
	// Flags in command-line order: the later, less specific one warns.
	c = mustResolve(t, "", nil, "--override", "log.roll.ms=1500", "--override", "log.roll.hours=2")
	if ws := shadowWarnings(c); c.node.Log.SegmentMs != 1500*time.Millisecond || len(ws) != 1 || !strings.Contains(ws[0], "log.roll.hours=2") {
		t.Fatalf("roll %v warnings %q", c.node.Log.SegmentMs, ws)
	}
	// The specific key from a later layer, or both in one file: no warning.
	for _, c := range []*serveConfig{
		mustResolve(t, "log.retention.hours=1", nil, "--override", "log.retention.ms=250"),
		mustResolve(t, "log.retention.hours=1\nlog.retention.ms=250", nil),
		mustResolve(t, "", []string{"SLUICE_LOG_DIR=/a", "SLUICE_LOG_DIRS=/b"}),
	} {
		if ws := shadowWarnings(c); len(ws) != 0 {
			t.Errorf("unexpected warnings %q", ws)
		}
	}
	c = mustResolve(t, "log.dirs=/file", nil, "--override", "log.dir=/flag")
	if ws := shadowWarnings(c); c.node.DataDir != "/file" || len(ws) != 1 {
		t.Fatalf("data dir %q warnings %q", c.node.DataDir, ws)
	}
}

func TestIgnoredKeys(t *testing.T) {
	for _, k := range []string{"controlled.shutdown.enable", "controlled.shutdown.max.retries", "offsets.commit.timeout.ms",
		"max.incremental.fetch.session.cache.slots", "max.connections", "max.connections.per.ip",
		"log.message.timestamp.difference.max.ms", "log.flush.start.offset.checkpoint.interval.ms",
		"log.cleaner.threads", "replica.socket.timeout.ms", "zookeeper.connect",
		"controller.quorum.bootstrap.servers", "inter.broker.protocol.version", "security.inter.broker.protocol"} {
		if !ignoredKey(k) {
			t.Errorf("%s is not ignored", k)
		}
		if findProp(k) != nil {
			t.Errorf("%s is both a key and ignored", k)
		}
	}
	// Misspellings near real keys, and names the old loose prefixes took.
	for _, k := range []string{"log.message.timestamp.typ", "max.connection", "max.connectionz",
		"log.flush.start.offset.checkpoint.interval", "controller.listener.name", "inter.broker.listener",
		"fetch.max.byte", "log.retention.byte"} {
		if ignoredKey(k) {
			t.Errorf("%s is ignored; a typo must be an error", k)
		}
	}
	// No ignored prefix swallows a key sluice implements (or its typos).
	for _, p := range serveProps {
		for _, pre := range ignoredPrefixes {
			if strings.HasPrefix(p.name, pre) {
				t.Errorf("ignored prefix %s covers the key %s", pre, p.name)
			}
		}
		if ignoredKeys[p.name] {
			t.Errorf("%s is both a key and ignored", p.name)
		}
	}
}

func TestParseProperties(t *testing.T) {
	f := func(text string, want ...string) {
		t.Helper()
		es, err := parseProperties(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		var got []string
		for _, e := range es {
			got = append(got, fmt.Sprintf("%s=%s@%d", e.key, e.value, e.line))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%q:\ngot  %q\nwant %q", text, got, want)
		}
	}
	f("a=1\n# c=2\n! d=3\n\n  b = 2 ", "a=1@1", "b=2 @5")
	f("a:1\nb 2\nc\t=\t3\nd", "a=1@1", "b=2@2", "c=3@3", "d=@4")
	f("listeners=PLAINTEXT://a:1,\\\n    PLAINTEXT://b:2\nx=y", "listeners=PLAINTEXT://a:1,PLAINTEXT://b:2@1", "x=y@3")
	f("a=1\\\\\nb=2", `a=1\@1`, "b=2@2") // an even number of backslashes does not continue
	f("# comment \\\nb=2", "b=2@2")      // comments do not continue
	f("a=x\\\n  # not a comment\nb=1", "a=x# not a comment@1", "b=1@3")
	f("k\\=ey=v\\u0041\\t\\z", "k=ey=vA\tz@1")
	f("a=1\r\nb=2\r\n", "a=1@1", "b=2@2")
	f("a=1\na=2", "a=1@1", "a=2@2")
	if _, err := parseProperties("a=\\u12"); err == nil {
		t.Fatal("short \\u escape: no error")
	}
}
