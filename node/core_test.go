package node

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCreateProduceRestartKeepsTopics(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	adm := newAdmin(t, n)
	ctx := testCtx(t)
	res, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": ptr("3600000")}, "orders")
	if err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "orders"); err == nil {
		t.Fatal("creating an existing topic succeeded")
	}
	cl := newClient(t, n, kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 10; i++ {
			r := &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("v%d-%d", p, i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			if r.Offset != int64(i) {
				t.Fatalf("partition %d record %d got offset %d", p, i, r.Offset)
			}
		}
	}
	cl.Close()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}

	n2 := startNode(t, dir, nil)
	adm2 := newAdmin(t, n2)
	td, err := adm2.ListTopics(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	o := td["orders"]
	if o.Err != nil || len(o.Partitions) != 3 {
		t.Fatalf("after restart: %+v", o)
	}
	ends, err := adm2.ListEndOffsets(ctx, "orders")
	if err == nil {
		ends.Each(func(lo kadm.ListedOffset) {
			if lo.Offset != 10 {
				t.Errorf("partition %d end %d, want 10", lo.Partition, lo.Offset)
			}
		})
	}
}

func TestProduceAutoCreatesAndValidatesNames(t *testing.T) {
	n := startNode(t, "", nil)
	ctx := testCtx(t)
	cl := newClient(t, n, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto-made", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to a new topic: %v", err)
	}
	if n.reg.get("auto-made") == nil {
		t.Fatal("topic not created")
	}
	adm := newAdmin(t, n)
	for _, bad := range []string{"bad name", "..", "x/y", string(make([]byte, 250))} {
		res, err := adm.CreateTopic(ctx, 1, 1, nil, bad)
		if err == nil && res.Err == nil {
			t.Fatalf("created invalid topic %q", bad)
		}
		if res.Err != nil && res.Err != kerr.InvalidTopicException {
			t.Errorf("%q: %v, want INVALID_TOPIC_EXCEPTION", bad, res.Err)
		}
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "a.b"); err != nil {
		t.Fatal(err)
	}
	if res, _ := adm.CreateTopic(ctx, 1, 1, nil, "a_b"); res.Err != kerr.InvalidTopicException {
		t.Errorf("colliding name: %v", res.Err)
	}
}

func ptr[T any](v T) *T { return &v }

// A second broker on a data dir in use fails before touching it, and the
// directory is free again after Close.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Logger = "127.0.0.1:0", dir, testLogger()
	if n2, err := New(cfg); err == nil {
		n2.Close(testCtx(t))
		t.Fatal("second broker opened a locked data dir")
	} else if !strings.Contains(err.Error(), "in use by another broker") {
		t.Fatalf("error %v", err)
	}
	if err := n.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	startNode(t, dir, nil)
}

// Advertising a wildcard address is refused; a blank host is resolved.
func TestAdvertisedHost(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Advertised = t.TempDir(), "0.0.0.0:9092"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("advertised 0.0.0.0: %v", err)
	}
	n := startNode(t, "", func(c *Config) { c.Advertised = ":19999" })
	if h, p := n.advertised(); h == "" || p != 19999 {
		t.Fatalf("advertised %q:%d", h, p)
	}
}
