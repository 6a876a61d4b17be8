package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

// TestCompactedTopic: a topic created with cleanup.policy=compact and small
// segments takes 100k keyed records over 1k keys from a kgo producer; the
// background cleaner (backoff shortened) compacts it, and a kgo consumer
// reading from the start sees each key once, with its latest value. Then
// tombstones: kept by a first pass, gone once delete.retention.ms passed,
// and the deleted keys do not come back.
func TestCompactedTopic(t *testing.T) {
	n := startNode(t, "", func(c *Config) { c.CleanerBackoff = 20 * time.Millisecond })
	const topic, keys, total = "cmp", 1000, 100_000
	createTopic(t, n, topic, 1, map[string]*string{
		"cleanup.policy":            ptr("compact"),
		"segment.bytes":             ptr("65536"),
		"delete.retention.ms":       ptr("1500"),
		"min.cleanable.dirty.ratio": ptr("0"), // clean whatever is dirty: the test waits for it
	})
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(total))
	ctx := testCtx(t)

	// A keyless record is refused, as Kafka refuses it.
	err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record on a compacted topic: %v, want INVALID_RECORD", err)
	}

	latest := map[string]string{}
	produce := func(recs []*kgo.Record) {
		t.Helper()
		var failed error
		for _, r := range recs {
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil && failed == nil {
					failed = err
				}
			})
		}
		if err := cl.Flush(ctx); err != nil || failed != nil {
			t.Fatalf("produce: %v %v", err, failed)
		}
	}
	var recs []*kgo.Record
	for i := 0; i < total; i++ {
		k, v := fmt.Sprintf("key-%04d", (i*7919)%keys), fmt.Sprintf("value-%06d", i)
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
		latest[k] = v
	}
	produce(recs)
	roll := rollTopic(t, cl, 1)
	waitCleaned(t, n, topic, roll)
	checkConsumed(t, n, topic, latest, roll)

	// Tombstones for a tenth of the keys.
	recs = recs[:0]
	for i := 0; i < keys/10; i++ {
		k := fmt.Sprintf("key-%04d", i)
		recs = append(recs, &kgo.Record{Key: []byte(k)}) // nil value: a tombstone
		delete(latest, k)
	}
	produce(recs)
	roll = rollTopic(t, cl, 2)
	waitCleaned(t, n, topic, roll)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := consumeLatest(t, n, topic, roll)
		tombs := 0
		for _, r := range got {
			if r.Value == nil {
				tombs++
			}
		}
		if tombs == 0 {
			if len(got) != len(latest) {
				t.Fatalf("%d keys after the tombstones went, want %d", len(got), len(latest))
			}
			for k, r := range got {
				if latest[k] != string(r.Value) {
					t.Fatalf("key %s: %q, want %q (a deleted key came back?)", k, r.Value, latest[k])
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tombstones still there long after delete.retention.ms", tombs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := n.store.CleanerStats()
	if st.Runs < 2 || st.RecordsRemoved < total-keys {
		t.Fatalf("cleaner stats %+v", st)
	}
	var metrics strings.Builder
	n.cfg.Metrics.WritePrometheus(&metrics)
	if !strings.Contains(metrics.String(), "sluice_cleaner_runs_total") {
		t.Fatal("no cleaner metrics")
	}
}

// rollTopic produces a record larger than segment.bytes (and
// incompressible) under its own key, so that everything before it sits in
// closed, cleanable segments, and returns its offset.
func rollTopic(t *testing.T, cl *kgo.Client, n int) int64 {
	t.Helper()
	v := make([]byte, 70<<10)
	rand.New(rand.NewSource(int64(n))).Read(v)
	r := &kgo.Record{Key: []byte(fmt.Sprintf("__roll-%d", n)), Value: v}
	if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return r.Offset
}

// waitCleaned waits until the cleaner has been through everything below to.
func waitCleaned(t *testing.T, n *Node, topic string, to int64) {
	t.Helper()
	l := n.store.Log(topic, 0)
	deadline := time.Now().Add(30 * time.Second)
	for l.CleanedTo() < to {
		if time.Now().After(deadline) {
			t.Fatalf("cleaned to %d after 30s, want %d", l.CleanedTo(), to)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// consumeLatest reads the topic from the start up to offset end (exclusive)
// and returns each key's last record; keys below end must appear once.
func consumeLatest(t *testing.T, n *Node, topic string, end int64) map[string]*kgo.Record {
	t.Helper()
	ccl := newClient(t, n, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer ccl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]*kgo.Record{}
	last := int64(-1)
	for last < end-1 {
		fs := ccl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			if r.Offset >= end || strings.HasPrefix(string(r.Key), "__roll") {
				return
			}
			if _, dup := got[string(r.Key)]; dup {
				t.Fatalf("key %s twice below offset %d", r.Key, end)
			}
			got[string(r.Key)] = r
		})
	}
	return got
}

func checkConsumed(t *testing.T, n *Node, topic string, latest map[string]string, end int64) {
	t.Helper()
	got := consumeLatest(t, n, topic, end)
	if len(got) != len(latest) {
		t.Fatalf("consumer saw %d keys, want %d", len(got), len(latest))
	}
	for k, v := range latest {
		if r := got[k]; r == nil || string(r.Value) != v {
			t.Fatalf("key %s: got %v, want %q", k, r, v)
		}
	}
}

// TestCompactionConfigs: the compaction topic configs take Kafka's ranges,
// describe with Kafka's defaults, and reach the partition's LogConfig.
func TestCompactionConfigs(t *testing.T) {
	n := startNode(t, "", nil)
	adm := newAdmin(t, n)
	f := func(name, value string, ok bool) {
		t.Helper()
		_, err := adm.CreateTopic(testCtx(t), 1, 1, map[string]*string{name: ptr(value)}, "bad")
		if (err == nil) != ok {
			t.Errorf("%s=%s: %v, want ok=%v", name, value, err, ok)
		}
		if err == nil {
			if _, err := adm.DeleteTopics(testCtx(t), "bad"); err != nil {
				t.Fatal(err)
			}
		} else if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("%s=%s: %v, want INVALID_CONFIG", name, value, err)
		}
	}
	f("cleanup.policy", "compact", true)
	f("cleanup.policy", "delete,compact", true)
	f("cleanup.policy", "compact,archive", false)
	f("cleanup.policy", "", false)
	f("min.cleanable.dirty.ratio", "1.5", false)
	f("min.cleanable.dirty.ratio", "-0.1", false)
	f("min.cleanable.dirty.ratio", "x", false)
	f("delete.retention.ms", "-1", false)
	f("min.compaction.lag.ms", "-1", false)
	f("max.compaction.lag.ms", "0", false)

	createTopic(t, n, "defaults", 1, map[string]*string{"cleanup.policy": ptr("compact,delete")})
	cs := describeTopic(t, adm, "defaults")
	wantConfig(t, cs, "cleanup.policy", "compact,delete", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "delete.retention.ms", "86400000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "min.cleanable.dirty.ratio", "0.5", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "min.compaction.lag.ms", "0", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "max.compaction.lag.ms", "9223372036854775807", kmsg.ConfigSourceDefaultConfig)

	createTopic(t, n, "set", 1, map[string]*string{"cleanup.policy": ptr("compact"), "delete.retention.ms": ptr("0"),
		"min.cleanable.dirty.ratio": ptr("0.25"), "min.compaction.lag.ms": ptr("60000"), "max.compaction.lag.ms": ptr("3600000")})
	got := n.store.Log("set", 0).Config()
	if got.Cleanup != segstore.CleanupCompact || got.DeleteRetentionMs != time.Millisecond || got.MinCleanableRatio != 0.25 ||
		got.MinCompactionLagMs != time.Minute || got.MaxCompactionLagMs != time.Hour {
		t.Fatalf("LogConfig %+v", got)
	}
	if n.store.Log("defaults", 0).Config().Cleanup != segstore.CleanupCompact|segstore.CleanupDelete {
		t.Fatal("compact,delete not applied")
	}
}
