package perf

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Result is one finished run. It is a plain value once Run returns: safe to
// read from many goroutines, not to mutate concurrently.
type Result struct {
	Workload      Workload  `json:"workload"`
	Start         time.Time `json:"start"`
	ElapsedSec    float64   `json:"elapsed_s"`
	Records       int64     `json:"records"` // acknowledged (produce, raw) or consumed (consume, e2e)
	Bytes         int64     `json:"bytes"`
	Errors        int64     `json:"errors"`
	Sent          int64     `json:"sent,omitempty"` // records handed to the client or the wire (not consume)
	FirstError    string    `json:"first_error,omitempty"`
	Produced      int64     `json:"produced,omitempty"` // e2e: records acknowledged to the producers
	RecordsPerSec float64   `json:"records_per_s"`
	MBPerSec      float64   `json:"mb_per_s"`

	// Latency is produce→ack for produce and raw (raw: per request), and
	// send→consume for e2e; absent for consume. With a rate, "send" is the
	// intended send time.
	Latency    *LatencySummary `json:"latency,omitempty"`
	AckLatency *LatencySummary `json:"ack_latency,omitempty"` // e2e only
	BrokerCPU  *CPUUsage       `json:"broker_cpu,omitempty"`
	ClientCPU  *CPUUsage       `json:"client_cpu,omitempty"`
	Timeline   []Sample        `json:"timeline"`
	Raw        *RawStats       `json:"raw,omitempty"`

	hist *hdrhistogram.Histogram // for the percentile plot
}

// RawStats describes the shape of a raw run.
type RawStats struct {
	ProduceVersion    int16 `json:"produce_version"`
	Connections       int   `json:"connections"`
	InFlight          int   `json:"inflight"`
	RecordsPerBatch   int   `json:"records_per_batch"`
	BatchesPerRequest int   `json:"batches_per_request"`
	Requests          int64 `json:"requests"`
	RequestBytes      int   `json:"request_bytes"` // largest pre-encoded request
}

// LatencySummary holds the standard percentiles in milliseconds.
type LatencySummary struct {
	Count  int64   `json:"count"`
	Mean   float64 `json:"mean_ms"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p99_9_ms"`
	P9999  float64 `json:"p99_99_ms"`
	Max    float64 `json:"max_ms"`
	Over1s int64   `json:"over_1s"` // samples of 1 s or more: how visible a stall is
}

func usToMs(v int64) float64 { return float64(v) / 1000 }

func summarize(h *hdrhistogram.Histogram) *LatencySummary {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	over := int64(0)
	for _, b := range h.Distribution() {
		if b.From >= int64(time.Second/time.Microsecond) {
			over += b.Count
		}
	}
	return &LatencySummary{
		Count:  h.TotalCount(),
		Mean:   h.Mean() / 1000,
		P50:    usToMs(h.ValueAtQuantile(50)),
		P90:    usToMs(h.ValueAtQuantile(90)),
		P99:    usToMs(h.ValueAtQuantile(99)),
		P999:   usToMs(h.ValueAtQuantile(99.9)),
		P9999:  usToMs(h.ValueAtQuantile(99.99)),
		Max:    usToMs(h.Max()),
		Over1s: over,
	}
}

// WriteJSON writes r as indented JSON. Not safe to call while r is mutated.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteSummary writes the human summary printed at the end of a run. Not
// safe to call while r is mutated.
func (r *Result) WriteSummary(w io.Writer) error {
	var b strings.Builder
	wl := r.Workload
	if wl.Mode == ModeConsume {
		fmt.Fprintf(&b, "consume %s: %d consumers\n", wl.Topic, wl.Consumers)
	} else {
		fmt.Fprintf(&b, "%s %s: %d partitions, acks=%s, record size %s, %s\n",
			wl.Mode, wl.Topic, wl.Partitions, wl.Acks, sizeLabel(wl), rateLabel(wl.Rate))
	}
	fmt.Fprintf(&b, "  records   %d in %.2f s (%d errors)\n", r.Records, r.ElapsedSec, r.Errors)
	if gap := r.Sent - r.Records - r.Errors; wl.Mode != ModeConsume && wl.Mode != ModeE2E && gap != 0 {
		fmt.Fprintf(&b, "  unaccounted %d of %d sent records (neither acknowledged nor failed)\n", gap, r.Sent)
	}
	if r.FirstError != "" {
		fmt.Fprintf(&b, "  first error: %s\n", r.FirstError)
	}
	if wl.Mode == ModeE2E {
		fmt.Fprintf(&b, "  produced  %d acknowledged\n", r.Produced)
	}
	fmt.Fprintf(&b, "  throughput %.0f rec/s, %.2f MB/s\n", r.RecordsPerSec, r.MBPerSec)
	writeLat := func(name string, l *LatencySummary) {
		if l == nil {
			return
		}
		fmt.Fprintf(&b, "  %s ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  p99.99 %.3f  max %.3f  (n=%d)\n",
			name, l.P50, l.P90, l.P99, l.P999, l.P9999, l.Max, l.Count)
	}
	writeLat("latency", r.Latency)
	writeLat("ack latency", r.AckLatency)
	for _, c := range []struct {
		name string
		u    *CPUUsage
	}{{"broker", r.BrokerCPU}, {"client", r.ClientCPU}} {
		if c.u != nil {
			fmt.Fprintf(&b, "  %s CPU %.2f s, %.2f CPU s/GB\n", c.name, c.u.Seconds, c.u.SecondsPerGB)
		}
	}
	if r.BrokerCPU == nil {
		b.WriteString("  broker CPU: unknown (pass --broker-pid for a local broker)\n")
	}
	if x := r.Raw; x != nil {
		fmt.Fprintf(&b, "  raw: produce v%d, %d connections x %d in flight, %d records/batch, %d batches/request, %d requests\n",
			x.ProduceVersion, x.Connections, x.InFlight, x.RecordsPerBatch, x.BatchesPerRequest, x.Requests)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sizeLabel(w Workload) string {
	if w.SizeDist != "" {
		return w.SizeDist
	}
	return fmt.Sprintf("%d B", w.RecordSize)
}

func rateLabel(rate float64) string {
	if rate <= 0 {
		return "max throughput"
	}
	return fmt.Sprintf("fixed rate %.0f rec/s", rate)
}
