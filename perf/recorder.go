package perf

import (
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 1 h at 3 significant digits. Anything slower
// than an hour is clamped to the top rather than dropped, so a pathological
// stall still shows as the max.
const (
	histMinUs = 1
	histMaxUs = int64(time.Hour / time.Microsecond)
	histSig   = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMinUs, histMaxUs, histSig) }

// latencyHist is an HDR histogram sharded by caller so that callbacks from
// different producers rarely contend. record is safe for concurrent use;
// snapshot takes one shard lock at a time.
type latencyHist struct {
	shards []histShard
}

type histShard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	_  [40]byte // keep neighbouring shard locks off one cache line
}

func newLatencyHist(shards int) *latencyHist {
	l := &latencyHist{shards: make([]histShard, max(shards, 1))}
	for i := range l.shards {
		l.shards[i].h = newHist()
	}
	return l
}

// record adds one latency. shard is any small integer identifying the caller
// (producer index, connection index); it only spreads lock contention.
func (l *latencyHist) record(shard int, d time.Duration) {
	us := int64(d / time.Microsecond)
	us = min(max(us, histMinUs), histMaxUs)
	s := &l.shards[shard%len(l.shards)]
	s.mu.Lock()
	_ = s.h.RecordValue(us) // cannot fail: us is clamped into range
	s.mu.Unlock()
}

// snapshot merges all shards into a fresh histogram the caller owns.
func (l *latencyHist) snapshot() *hdrhistogram.Histogram {
	out := newHist()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// recorder collects everything one run measures. Counters are atomics and
// may be bumped from any goroutine; the timeline belongs to the sampler.
type recorder struct {
	start   time.Time
	records atomic.Int64 // completed: acknowledged (produce/raw) or consumed
	bytes   atomic.Int64 // payload bytes of those records
	errors  atomic.Int64 // records (or raw batches' records) that failed
	sent    atomic.Int64 // records handed to the client or wire

	lat *latencyHist // primary latency: ack (produce/raw) or end to end (e2e)
	ack *latencyHist // produce ack latency during e2e; nil otherwise

	firstErr atomic.Pointer[error]

	timeline           []Sample
	sampledR, sampledB int64 // totals already in timeline
}

func newRecorder(start time.Time, shards int, withAck bool) *recorder {
	r := &recorder{start: start, lat: newLatencyHist(shards)}
	if withAck {
		r.ack = newLatencyHist(shards)
	}
	return r
}

// done counts one completed record of n payload bytes. Safe for concurrent use.
func (r *recorder) done(n int) {
	r.records.Add(1)
	r.bytes.Add(int64(n))
}

// fail counts n failed records and keeps the first error for the report.
// Safe for concurrent use.
func (r *recorder) fail(n int64, err error) {
	r.errors.Add(n)
	r.firstErr.CompareAndSwap(nil, &err)
}

func (r *recorder) err() error {
	if p := r.firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Sample is one second of the timeline: what completed between T-1 s and T.
type Sample struct {
	T       float64 `json:"t_s"`
	Records int64   `json:"records"`
	Bytes   int64   `json:"bytes"`
}

// sample appends the interval since the previous sample. Only the sampler
// goroutine calls it (and the runner once more after the sampler stopped).
func (r *recorder) sample(now time.Time) Sample {
	recs, byts := r.records.Load(), r.bytes.Load()
	s := Sample{T: now.Sub(r.start).Seconds(), Records: recs - r.sampledR, Bytes: byts - r.sampledB}
	r.sampledR, r.sampledB = recs, byts
	r.timeline = append(r.timeline, s)
	return s
}
