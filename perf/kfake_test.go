package perf

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests run every workload against an in-process kfake cluster and
// check the reported counts against counts taken independently, through
// kadm's end offsets and a separate kgo consumer, never through perf's own
// code.

func startKfake(t *testing.T, brokers int) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

func testWorkload(addrs []string, topic string, mode Mode) Workload {
	w := DefaultWorkload()
	w.Mode, w.Brokers, w.Topic = mode, addrs, topic
	w.Partitions, w.RecordSize, w.Duration = 3, 200, 0
	return w
}

func runOK(t *testing.T, w Workload) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, w, Options{})
	if err != nil {
		t.Fatalf("%s run: %v", w.Mode, err)
	}
	if res.Errors != 0 {
		t.Fatalf("%s run: %d errors, first: %s", w.Mode, res.Errors, res.FirstError)
	}
	return res
}

// endOffsetSum is the broker's own count of records in the topic.
func endOffsetSum(t *testing.T, addrs []string, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}

// consumeAll reads the whole topic with a plain kgo consumer, which decodes
// and checks every batch, and returns records and payload bytes.
func consumeAll(t *testing.T, addrs []string, topic string, want int64) (n, bytes int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				t.Fatalf("consume %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			bytes += int64(len(r.Key) + len(r.Value))
		})
	}
	return n, bytes
}

func TestProduceThenConsumeCountsMatchBroker(t *testing.T) {
	_, addrs := startKfake(t, 1)
	w := testWorkload(addrs, "pc", ModeProduce)
	w.Records, w.Producers, w.Keys = 3000, 2, 10
	res := runOK(t, w)
	if res.Records != 3000 || res.Sent != 3000 || res.Latency == nil || res.Latency.Count != 3000 {
		t.Fatalf("produce: %d records, latency %+v; want 3000 of each", res.Records, res.Latency)
	}
	if got := endOffsetSum(t, addrs, "pc"); got != res.Records {
		t.Fatalf("broker holds %d records, produce reported %d", got, res.Records)
	}
	if n, b := consumeAll(t, addrs, "pc", 3000); n != 3000 || b != res.Bytes {
		t.Fatalf("independent consumer read %d records / %d bytes, produce reported %d / %d", n, b, res.Records, res.Bytes)
	}
	if res.ClientCPU == nil || res.ClientCPU.Seconds <= 0 || res.BrokerCPU != nil {
		t.Fatalf("CPU: client %+v broker %+v; want client time and no broker without a pid", res.ClientCPU, res.BrokerCPU)
	}

	w.Mode, w.Consumers, w.CreateTopic = ModeConsume, 2, false
	cres := runOK(t, w)
	if cres.Records != 3000 || cres.Bytes != res.Bytes || cres.Latency != nil {
		t.Fatalf("consume: %d records / %d bytes (latency %+v); want 3000 / %d and no latency", cres.Records, cres.Bytes, cres.Latency, res.Bytes)
	}
}

func TestFixedRateProduce(t *testing.T) {
	_, addrs := startKfake(t, 1)
	w := testWorkload(addrs, "rate", ModeProduce)
	w.Rate, w.Duration, w.BrokerPID = 2000, time.Second, os.Getpid()
	res := runOK(t, w)
	// 2000/s for 1 s is 2000 slots, the last due at 999.5 ms.
	if res.Records != 2000 {
		t.Fatalf("fixed rate sent %d records, want 2000", res.Records)
	}
	if res.ElapsedSec < 0.99 || res.ElapsedSec > 3 {
		t.Fatalf("fixed-rate second took %.2f s", res.ElapsedSec)
	}
	if got := endOffsetSum(t, addrs, "rate"); got != res.Records {
		t.Fatalf("broker holds %d, reported %d", got, res.Records)
	}
	if res.BrokerCPU == nil || res.BrokerCPU.Seconds <= 0 || res.BrokerCPU.SecondsPerGB <= 0 {
		t.Fatalf("broker CPU %+v with the in-process broker's pid", res.BrokerCPU)
	}
	if n := len(res.Timeline); n < 1 || n > int(res.ElapsedSec)+2 {
		t.Fatalf("timeline has %d samples for a %.2f s run", n, res.ElapsedSec)
	}
}

func TestE2ECountsAndLatency(t *testing.T) {
	_, addrs := startKfake(t, 1)
	w := testWorkload(addrs, "e2e", ModeE2E)
	w.Rate, w.Duration, w.Consumers = 1500, time.Second, 2
	res := runOK(t, w)
	if res.Produced != 1500 || res.Records != res.Produced {
		t.Fatalf("e2e produced %d, consumed %d; want 1500 both", res.Produced, res.Records)
	}
	if got := endOffsetSum(t, addrs, "e2e"); got != res.Produced {
		t.Fatalf("broker holds %d, e2e produced %d", got, res.Produced)
	}
	if res.Latency == nil || res.Latency.Count != res.Records || res.AckLatency == nil || res.AckLatency.Count != res.Produced {
		t.Fatalf("latency %+v ack %+v", res.Latency, res.AckLatency)
	}
	// A record is consumed after it is acknowledged, so end-to-end latency
	// at the median cannot be below produce latency by more than rounding.
	if res.Latency.P50 < res.AckLatency.P50*0.5 || res.Latency.Max > 10_000 {
		t.Fatalf("e2e p50 %.3f ms vs ack p50 %.3f ms, max %.1f ms", res.Latency.P50, res.AckLatency.P50, res.Latency.Max)
	}
}

func TestRawCountsMatchBroker(t *testing.T) {
	_, addrs := startKfake(t, 3)
	w := testWorkload(addrs, "raw", ModeRaw)
	w.Partitions, w.RecordSize, w.BatchBytes = 6, 100, 16<<10
	w.Connections, w.InFlight, w.Records, w.Keys = 2, 4, 20000, 50
	res := runOK(t, w)
	got := endOffsetSum(t, addrs, "raw")
	if got != res.Records || res.Records < 20000 {
		t.Fatalf("broker holds %d records, raw reported %d (wanted >= 20000)", got, res.Records)
	}
	n, b := consumeAll(t, addrs, "raw", got)
	if n != got || b != res.Bytes {
		t.Fatalf("kgo consumer decoded %d records / %d bytes; raw reported %d / %d", n, b, res.Records, res.Bytes)
	}
	if res.Raw == nil || res.Raw.Requests == 0 || res.Latency.Count != res.Raw.Requests || res.Raw.ProduceVersion < 3 {
		t.Fatalf("raw stats %+v, latency %+v", res.Raw, res.Latency)
	}
	if perReq := int64(res.Raw.RecordsPerBatch * res.Raw.BatchesPerRequest); res.Raw.Requests*perReq < res.Records {
		t.Fatalf("%d requests of at most %d records cannot ack %d", res.Raw.Requests, perReq, res.Records)
	}
}

// TestRawCountsPartitionErrors makes the broker refuse every partition and
// checks that raw mode reports failures, not throughput; a non-retriable
// refusal must also end the run at once instead of replaying doomed bytes.
func TestRawCountsPartitionErrors(t *testing.T) {
	f := func(code *kerr.Error, wantStop bool) {
		t.Helper()
		c, addrs := startKfake(t, 1)
		var refused atomic.Int64
		c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			req := kreq.(*kmsg.ProduceRequest)
			resp := req.ResponseKind().(*kmsg.ProduceResponse)
			for _, rt := range req.Topics {
				st := kmsg.NewProduceResponseTopic()
				st.Topic, st.TopicID = rt.Topic, rt.TopicID
				for _, rp := range rt.Partitions {
					sp := kmsg.NewProduceResponseTopicPartition()
					sp.Partition, sp.ErrorCode = rp.Partition, code.Code
					st.Partitions = append(st.Partitions, sp)
					refused.Add(1)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		})
		w := testWorkload(addrs, "rawerr", ModeRaw)
		w.Records, w.BatchBytes, w.Connections, w.InFlight = 3000, 20000, 1, 2
		res, err := Run(context.Background(), w, Options{})
		if (err != nil) != wantStop {
			t.Fatalf("%s: run error %v, want an error: %v", code.Message, err, wantStop)
		}
		if res.Records != 0 || res.Errors == 0 || refused.Load() == 0 || !strings.Contains(res.FirstError, code.Message) {
			t.Fatalf("%s: records %d errors %d (refused %d batches), first error %q; want 0 acknowledged",
				code.Message, res.Records, res.Errors, refused.Load(), res.FirstError)
		}
		if !wantStop && res.Errors < 3000 {
			t.Fatalf("%s: retriable errors stopped the run after %d records", code.Message, res.Errors)
		}
	}
	f(kerr.NotEnoughReplicas, false) // retriable: keep going, count them all
	f(kerr.MessageTooLarge, true)    // hopeless: stop
}

// TestProduceBytesMatchDisk compares reported payload bytes with what a
// persisting kfake wrote to its segment files (raw RecordBatches): they
// must agree within 10%, the gap being batch and record framing.
func TestProduceBytesMatchDisk(t *testing.T) {
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	w := testWorkload(c.ListenAddrs(), "disk", ModeProduce)
	w.Records, w.RecordSize = 4000, 1024
	res := runOK(t, w)
	c.Close() // flushes whatever kfake still buffers
	checkDiskRatio(t, dir, ".dat", "disk", res.Bytes)
}

// checkDiskRatio sums the files under dir whose path ends in suffix and
// contains match (a topic's segments) and requires them to hold the payload
// bytes the run reported plus at most 10% framing.
func checkDiskRatio(t *testing.T, dir, suffix, match string, payload int64) {
	t.Helper()
	var disk int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) && strings.Contains(p, match) {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			disk += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ratio := float64(disk) / float64(payload)
	if ratio < 1 || ratio > 1.1 {
		t.Fatalf("%d bytes in segments for %d payload bytes reported (ratio %.3f)", disk, payload, ratio)
	}
	t.Logf("segments %d bytes, payload %d bytes: ratio %.4f", disk, payload, ratio)
}
