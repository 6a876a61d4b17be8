package node

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeTopic returns a topic's configs by name.
func describeTopic(t *testing.T, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

func wantConfig(t *testing.T, cs map[string]kadm.Config, key, value string, src kmsg.ConfigSource) {
	t.Helper()
	c, ok := cs[key]
	if !ok {
		t.Errorf("%s not described", key)
		return
	}
	if c.MaybeValue() != value || c.Source != src {
		t.Errorf("%s = %q (%s), want %q (%s)", key, c.MaybeValue(), c.Source, value, src)
	}
}

func TestTopicConfigs(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) { c.Log.RetentionBytes = 1 << 30 } // a broker-level value from "the config file"
	n := startNode(t, dir, mod)
	createTopic(t, n, "cfg", 2, map[string]*string{"retention.ms": ptr("3600000")})
	adm := newAdmin(t, n)
	ctx := testCtx(t)

	cs := describeTopic(t, adm, "cfg")
	if len(cs) != len(topicConfigs) {
		t.Errorf("%d configs described, want %d", len(cs), len(topicConfigs))
	}
	wantConfig(t, cs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "retention.bytes", "1073741824", kmsg.ConfigSourceStaticBrokerConfig)
	wantConfig(t, cs, "cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)
	syn := cs["retention.ms"].Synonyms
	if len(syn) != 2 || syn[0].Key != "retention.ms" || syn[1].Key != "log.retention.ms" ||
		syn[1].Source != kmsg.ConfigSourceDefaultConfig || *syn[1].Value != "604800000" {
		t.Errorf("retention.ms synonyms: %+v", syn)
	}
	syn = cs["retention.bytes"].Synonyms
	if len(syn) != 2 || syn[0].Source != kmsg.ConfigSourceStaticBrokerConfig || *syn[1].Value != "-1" {
		t.Errorf("retention.bytes synonyms: %+v", syn)
	}

	alter := func(ops ...kadm.AlterConfig) error {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx, ops, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		return rs[0].Err
	}
	// A small segment.bytes must reach the running logs: produce and see them roll.
	if err := alter(kadm.AlterConfig{Name: "segment.bytes", Value: ptr("1024")},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"},
		kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("delete")}); err != nil {
		t.Fatalf("alter: %v", err)
	}
	cs = describeTopic(t, adm, "cfg")
	wantConfig(t, cs, "segment.bytes", "1024", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "cleanup.policy", "delete", kmsg.ConfigSourceDynamicTopicConfig)
	for p := int32(0); p < 2; p++ {
		if got := n.reg.partition("cfg", p).getLog().Config().SegmentBytes; got != 1024 {
			t.Errorf("partition %d runs with segment.bytes %d", p, got)
		}
	}
	cl := newClient(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	old := time.Now().Add(-2 * time.Hour)
	for i := 0; i < 30; i++ {
		r := &kgo.Record{Topic: "cfg", Value: make([]byte, 100), Timestamp: old}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	segs := segmentFiles(t, n, "cfg", 0)
	if segs < 3 {
		t.Fatalf("segment.bytes=1024 not applied: %d segments", segs)
	}
	// So must a retention change: an hour's retention drops the 2h-old segments.
	if err := alter(kadm.AlterConfig{Name: "retention.ms", Value: ptr("3600000")}); err != nil {
		t.Fatal(err)
	}
	n.store.EnforceRetention()
	if got := segmentFiles(t, n, "cfg", 0); got != 1 {
		t.Errorf("after retention.ms=1h: %d segments, want only the active one", got)
	}

	// Refusals change nothing.
	before := describeTopic(t, adm, "cfg")
	for _, bad := range []struct {
		op   kadm.AlterConfig
		want error
	}{
		{kadm.AlterConfig{Name: "segment.bytes", Value: ptr("abc")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "segment.bytes", Value: ptr("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "no.such.config", Value: ptr("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "flush.messages", Value: ptr("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("archive")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: ptr("delete")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: ptr("5")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "retention.ms"}, kerr.InvalidRequest},
	} {
		// A valid change alongside must not be applied either.
		err := alter(kadm.AlterConfig{Name: "max.message.bytes", Value: ptr("5000")}, bad.op)
		if err != bad.want {
			t.Errorf("%+v: %v, want %v", bad.op, err, bad.want)
		}
	}
	// An unknown operation (kadm cannot send one) and a key given twice.
	for _, ops := range [][]kmsg.IncrementalAlterConfigsRequestResourceConfig{
		{{Name: "retention.ms", Op: 9, Value: ptr("5")}},
		{{Name: "retention.ms", Value: ptr("5")}, {Name: "retention.ms", Op: 1}},
	} {
		ireq := kmsg.NewPtrIncrementalAlterConfigsRequest()
		ireq.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "cfg", Configs: ops}}
		iresp, err := ireq.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if c := iresp.Resources[0].ErrorCode; c != kerr.InvalidRequest.Code {
			t.Errorf("ops %+v: %v", ops, kerr.ErrorForCode(c))
		}
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("1")}}, "missing")
	if err != nil || rs[0].Err != kerr.UnknownTopicOrPartition {
		t.Errorf("alter an unknown topic: %v %+v", err, rs)
	}
	// Validate-only changes nothing.
	if rs, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("1")}}, "cfg"); err != nil || rs[0].Err != nil {
		t.Errorf("validate: %v %+v", err, rs)
	}
	if rs, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("x")}}, "cfg"); err != nil || rs[0].Err != kerr.InvalidConfig {
		t.Errorf("validate a bad value: %v %+v", err, rs)
	}
	after := describeTopic(t, adm, "cfg")
	for k, c := range before {
		a := after[k]
		if a.MaybeValue() != c.MaybeValue() || a.Source != c.Source {
			t.Errorf("%s changed by refused alterations: %q -> %q", k, c.MaybeValue(), a.MaybeValue())
		}
	}

	// The legacy AlterConfigs replaces all overrides.
	rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: ptr("5000")}}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter state: %v %+v", err, rs)
	}
	cs = describeTopic(t, adm, "cfg")
	wantConfig(t, cs, "max.message.bytes", "5000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	if rs, _ := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "bogus", Value: ptr("1")}}, "cfg"); rs[0].Err != kerr.InvalidConfig {
		t.Errorf("alter state with an unknown key: %+v", rs)
	}
	if rs, _ := adm.ValidateAlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("1")}}, "cfg"); rs[0].Err != nil {
		t.Errorf("validate alter state: %+v", rs)
	}
	wantConfig(t, describeTopic(t, adm, "cfg"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	// Both survive a restart, in the metadata and in the running logs.
	cl.Close()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, dir, mod)
	adm = newAdmin(t, n)
	cs = describeTopic(t, adm, "cfg")
	wantConfig(t, cs, "max.message.bytes", "5000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig)
	if got := n.reg.partition("cfg", 1).getLog().Config().MaxMessageBytes; got != 5000 {
		t.Errorf("after restart the log runs with max.message.bytes %d", got)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "missing")
	if err != nil || len(rcs) != 1 || rcs[0].Err != kerr.UnknownTopicOrPartition {
		t.Errorf("describe an unknown topic: %v %+v", err, rcs)
	}
}

func TestDescribeConfigsRaw(t *testing.T) {
	n := startNode(t, "", func(c *Config) { c.NumPartitions = 3 })
	createTopic(t, n, "raw", 1, nil)
	cl := newClient(t, n)
	id := strconv.Itoa(int(n.cfg.NodeID))

	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeDocumentation = true
	add := func(typ kmsg.ConfigResourceType, name string, keys ...string) {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = typ, name, keys
		req.Resources = append(req.Resources, rr)
	}
	add(kmsg.ConfigResourceTypeTopic, "raw", "segment.bytes", "not.a.config")
	add(kmsg.ConfigResourceTypeBroker, id)
	add(kmsg.ConfigResourceTypeBroker, "")
	add(kmsg.ConfigResourceTypeBroker, "99")
	add(kmsg.ConfigResourceTypeBroker, "x")
	add(kmsg.ConfigResourceTypeBrokerLogger, id)
	add(kmsg.ConfigResourceTypeTopic, "bad name")
	// Raw: kgo would route the resources named for other brokers elsewhere.
	req.Version = 4
	resp := dialRaw(t, n).request(req, 1).(*kmsg.DescribeConfigsResponse)
	rs := resp.Resources
	if len(rs) != 7 {
		t.Fatalf("%d resources answered", len(rs))
	}
	if rs[0].ErrorCode != 0 || len(rs[0].Configs) != 1 || rs[0].Configs[0].Name != "segment.bytes" ||
		rs[0].Configs[0].ConfigType != kmsg.ConfigTypeInt || rs[0].Configs[0].Documentation == nil ||
		rs[0].Configs[0].ReadOnly || len(rs[0].Configs[0].ConfigSynonyms) != 0 {
		t.Errorf("filtered topic describe: %+v", rs[0])
	}
	broker := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range rs[1].Configs {
		broker[c.Name] = c
		if !c.ReadOnly {
			t.Errorf("broker config %s is not read-only", c.Name)
		}
	}
	abs, _ := filepath.Abs(n.cfg.DataDir)
	for k, want := range map[string]string{
		"node.id": id, "broker.id": id, "log.dirs": abs, "num.partitions": "3",
		"default.replication.factor": "1", "auto.create.topics.enable": "true", "delete.topic.enable": "true",
		"min.insync.replicas": "1", "log.segment.bytes": "1073741824", "log.retention.ms": "604800000",
		"log.retention.bytes": "-1", "message.max.bytes": "1048588", "log.message.timestamp.type": "CreateTime",
		"log.cleanup.policy": "delete", "log.flush.policy": "ack", "io.engine": "auto",
		"socket.request.max.bytes": "104857600", "advertised.listeners": "PLAINTEXT://" + n.Advertised(),
		"log.roll.ms": "604800000", "log.index.interval.bytes": "4096",
	} {
		c, ok := broker[k]
		if !ok || c.Value == nil || *c.Value != want {
			t.Errorf("broker %s = %v, want %q", k, c.Value, want)
		}
	}
	if s := broker["num.partitions"].Source; s != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("num.partitions source %s", s)
	}
	if s := broker["log.segment.bytes"].Source; s != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("log.segment.bytes source %s", s)
	}
	if rs[2].ErrorCode != 0 || len(rs[2].Configs) != 0 {
		t.Errorf("cluster default: %+v", rs[2])
	}
	for i, want := range map[int]int16{3: kerr.InvalidRequest.Code, 4: kerr.InvalidRequest.Code,
		5: kerr.InvalidRequest.Code, 6: kerr.InvalidTopicException.Code} {
		if rs[i].ErrorCode != want || rs[i].ErrorMessage == nil && want == kerr.InvalidRequest.Code {
			t.Errorf("resource %d (%s %q): %v %v", i, rs[i].ResourceType, rs[i].ResourceName,
				kerr.ErrorForCode(rs[i].ErrorCode), rs[i].ErrorMessage)
		}
	}

	// kadm's broker describe (synonyms on) for this broker.
	adm := newAdmin(t, n)
	rcs, err := adm.DescribeBrokerConfigs(testCtx(t), n.cfg.NodeID)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil || len(rcs[0].Configs) < 20 {
		t.Fatalf("describe broker: %v %+v", err, rcs)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == "num.partitions" && (len(c.Synonyms) != 2 || c.Synonyms[1].Source != kmsg.ConfigSourceDefaultConfig) {
			t.Errorf("num.partitions synonyms: %+v", c.Synonyms)
		}
	}

	// Broker configs cannot be altered; an empty change is a no-op.
	ars, err := adm.AlterBrokerConfigs(testCtx(t), []kadm.AlterConfig{{Name: "log.retention.ms", Value: ptr("1")}}, n.cfg.NodeID)
	if err != nil || len(ars) != 1 || ars[0].Err != kerr.InvalidRequest || ars[0].ErrMessage == "" {
		t.Errorf("alter broker: %v %+v", err, ars)
	}
	ars, err = adm.AlterBrokerConfigsState(testCtx(t), []kadm.AlterConfig{{Name: "num.partitions", Value: ptr("5")}}, n.cfg.NodeID)
	if err != nil || len(ars) != 1 || ars[0].Err != kerr.InvalidRequest {
		t.Errorf("alter broker state: %v %+v", err, ars)
	}
	ireq := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, name := range []string{"", "raw", "raw"} {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
		if name != "" {
			rr.ResourceType = kmsg.ConfigResourceTypeTopic
		}
		ireq.Resources = append(ireq.Resources, rr)
	}
	iresp, err := ireq.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if c := iresp.Resources[0].ErrorCode; c != 0 {
		t.Errorf("empty broker change: %v", kerr.ErrorForCode(c))
	}
	for _, r := range iresp.Resources[1:] {
		if r.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("duplicate resource: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	}
}

// Config values are stored as checked (trimmed), and millisecond values too
// large for a time.Duration saturate instead of wrapping to a tiny retention.
func TestTopicConfigTrimAndOverflow(t *testing.T) {
	n := startNode(t, "", nil)
	ctx := testCtx(t)
	adm := newAdmin(t, n)
	huge := "18446744073710" // wraps to under 1 ms if multiplied naively
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"min.insync.replicas": ptr(" 2 "), "retention.ms": &huge, "segment.ms": &huge,
	}, "trimmed"); err != nil {
		t.Fatal(err)
	}
	tp := n.reg.get("trimmed")
	if got := n.reg.configs(tp)["min.insync.replicas"]; got != "2" {
		t.Fatalf("stored %q", got)
	}
	if m := n.minInsync(tp); m != 2 {
		t.Fatalf("min.insync.replicas in effect: %d", m)
	}
	lc := tp.parts[0].getLog().Config()
	if lc.RetentionMs < 24*time.Hour*365*100 || lc.SegmentMs < 24*time.Hour*365*100 {
		t.Fatalf("huge ms values became retention %v, segment %v", lc.RetentionMs, lc.SegmentMs)
	}
	// acks=all now needs 2 in-sync replicas; this broker has 1.
	cl := newClient(t, n, kgo.DefaultProduceTopic("trimmed"), kgo.RecordRetries(0))
	if err := cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("produce: %v, want NOT_ENOUGH_REPLICAS", err)
	}
}
