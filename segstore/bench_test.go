package segstore

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring"
)

// BenchmarkAppend measures append throughput of 16 KiB batches spread over 1,
// 64 and 1,000 partitions under each flush policy, on the real file system
// with the engine io.engine picks (SLUICE_IO_ENGINE=sync|uring to force one).
// Producers are closed-loop: each partition keeps 5 appends in flight, a
// Kafka producer's default max.in.flight.requests.per.connection
// (SLUICE_BENCH_INFLIGHT overrides it). Reported besides MB/s: fsyncs/s
// issued and appends per fsync (how well group commit shares them).
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []FlushPolicy{FlushAck, FlushInterval, FlushOS} {
		for _, parts := range []int{1, 64, 1000} {
			b.Run(fmt.Sprintf("policy=%s/partitions=%d", policy, parts), func(b *testing.B) {
				benchAppend(b, policy, parts)
			})
		}
	}
}

func benchAppend(b *testing.B, policy FlushPolicy, parts int) {
	const batchSize = 16 << 10
	engName := "auto"
	if v := os.Getenv("SLUICE_IO_ENGINE"); v != "" {
		engName = v
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := ioring.New(ioring.Options{Engine: engName, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	st, err := Open(Config{Dir: b.TempDir(), Engine: eng, Flush: policy, FlushMessages: 10_000,
		FlushEvery: time.Second, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	logs := make([]*Log, parts)
	for p := range logs {
		if logs[p], err = st.CreateLog("bench", int32(p), LogConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	perPart := 5
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_INFLIGHT")); err == nil && v > 0 {
		perPart = v
	}
	slots := parts * perPart
	free := make(chan int, slots)
	bufs := make([][]byte, slots)
	dones := make([]func(AppendResult), slots)
	proto := makeBatch(16, batchSize/16-20, time.Now().UnixMilli(), nil)
	for s := range bufs {
		bufs[s] = append([]byte(nil), proto...)
		free <- s
		s := s
		dones[s] = func(r AppendResult) {
			if r.Err != nil {
				panic(r.Err)
			}
			free <- s
		}
	}
	b.SetBytes(int64(len(proto)))
	b.ReportAllocs()
	before := st.Stats()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		s := <-free
		if _, err := logs[s%parts].Append(bufs[s], 0, dones[s]); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < slots; i++ {
		<-free
	}
	el := time.Since(start)
	b.StopTimer()
	after := st.Stats()
	syncs := after.Syncs - before.Syncs
	b.ReportMetric(float64(syncs)/el.Seconds(), "fsyncs/s")
	if syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "appends/fsync")
	}
	b.ReportMetric(float64(after.Rounds-before.Rounds)/el.Seconds(), "rounds/s")
}
