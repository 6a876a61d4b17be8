package node

import (
	"fmt"
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
