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
		t.Fatalf("documented defaults differ from node.DefaultConfig:\n%+v\n%+v", c.node, node.DefaultConfig())
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
	f("log.cleanup.policy=compact", "log.cleanup.policy", "compaction")
	f("log.message.timestamp.type=Now", "log.message.timestamp.type")
	f("listeners=SSL://:9093", "listeners", "SSL")
	f("listeners=localhost", "listeners", "host:port")
	f("advertised.listeners=PLAINTEXT://h:0", "advertised.listeners")
	f("metrics.listen=nope", "metrics.listen")
	f("node.id=1\nbroker.id=2", "node.id", "broker.id", "disagree")
	f("num.partitions=0\nmin.insync.replicas=0", "num.partitions", "min.insync.replicas")
	f("\n\nlog.dirz=/x\nnum.partitions=1", "unknown properties", "log.dirz", ":3")
	f("log.retention.hours=-2", "log.retention.hours")
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
	for _, k := range []string{"process.roles", "controller.listener.names", "num.io.threads", "offsets.topic.replication.factor",
		"CONTROLLER://:9093", "CONTROLLER://localhost:9093"} {
		if !strings.Contains(all, k) {
			t.Errorf("warnings lack %s:\n%s", k, all)
		}
	}
	if len(c.warnings) != 3 { // ignored keys, extra listener, extra advertised listener
		t.Errorf("%d warnings, want 3:\n%s", len(c.warnings), all)
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
