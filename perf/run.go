package perf

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options are the presentation knobs of a run; none changes what is measured.
type Options struct {
	// Progress receives one status line per second; nil prints nothing.
	Progress io.Writer
	// InPlace rewrites the status line with '\r' (for terminals).
	InPlace bool
	// Log receives warnings such as "topic exists with 3 partitions"; nil
	// discards them.
	Log io.Writer
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// env is what a runner gets: the workload, parsed once, and the shared
// measurement state. Fields are set before any runner goroutine starts and
// never written after, except through the recorder's atomics.
type env struct {
	w        Workload
	opts     Options
	acks     int16
	sizes    sizeDist
	payload  []byte
	adm      *kadm.Client
	meta     kadm.TopicDetail // the topic, after creation
	rec      *recorder
	sched    *schedule
	raw      *RawStats
	produced int64 // e2e: acknowledged produces
}

// runner is one workload kind. prepare does the untimed setup (clients,
// connections, pre-encoding); run is measured from its first slot to its last
// acknowledgement; close releases whatever prepare made.
type runner interface {
	prepare(ctx context.Context, e *env) error
	run(ctx context.Context, e *env) error
	close()
}

// Run executes one workload against the brokers in w and returns its result.
// It blocks until the run ends (duration, record count, or ctx). Safe to
// call from any goroutine; concurrent runs are independent.
func Run(ctx context.Context, w Workload, opts Options) (*Result, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	e := &env{w: w, opts: opts}
	e.acks, _ = parseAcks(w.Acks)
	e.sizes, _ = w.sizes()
	e.payload = newPayload(e.sizes.max())

	admCl, err := kgo.NewClient(kgo.SeedBrokers(w.Brokers...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	e.adm = kadm.NewClient(admCl)
	if e.meta, err = ensureTopic(ctx, e.adm, w, opts); err != nil {
		return nil, err
	}

	var r runner
	switch w.Mode {
	case ModeProduce:
		r = &produceRunner{}
	case ModeConsume:
		r = &consumeRunner{}
	case ModeE2E:
		r = &e2eRunner{}
	case ModeRaw:
		r = &rawRunner{}
	}
	defer r.close()
	if err := r.prepare(ctx, e); err != nil {
		return nil, err
	}

	start := time.Now()
	shards := max(w.Producers, w.Consumers, w.Connections*max(len(e.meta.Partitions), 1))
	e.rec = newRecorder(start, min(shards, 64), w.Mode == ModeE2E)
	if w.Mode != ModeConsume {
		e.sched = newSchedule(start, w.Rate, w.Records, w.Duration)
	}
	cpu := startCPU(w.BrokerPID)
	prog := startProgress(e.rec, opts.Progress, opts.InPlace, e.sched, w.Duration)
	runErr := r.run(ctx, e)
	end := time.Now()
	prog.finish(end)

	res := &Result{
		Workload:   w,
		Start:      start,
		ElapsedSec: end.Sub(start).Seconds(),
		Records:    e.rec.records.Load(),
		Bytes:      e.rec.bytes.Load(),
		Errors:     e.rec.errors.Load(),
		Sent:       e.rec.sent.Load(),
		Produced:   e.produced,
		Timeline:   e.rec.timeline,
		Raw:        e.raw,
	}
	if err := e.rec.err(); err != nil {
		res.FirstError = err.Error()
	}
	if res.ElapsedSec > 0 {
		res.RecordsPerSec = float64(res.Records) / res.ElapsedSec
		res.MBPerSec = float64(res.Bytes) / 1e6 / res.ElapsedSec
	}
	if w.Mode != ModeConsume {
		res.hist = e.rec.lat.snapshot()
		res.Latency = summarize(res.hist)
	}
	if e.rec.ack != nil {
		res.AckLatency = summarize(e.rec.ack.snapshot())
	}
	var cpuErr error
	res.BrokerCPU, res.ClientCPU, cpuErr = cpu.finish(res.Bytes)
	if cpuErr != nil {
		opts.logf("broker CPU not measured: %v", cpuErr)
	}
	return res, runErr
}
