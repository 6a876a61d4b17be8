package perf

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// e2eStampLen is the prefix of an e2e record value that carries its send
// time: nanoseconds since the run's start on the monotonic clock, so
// producer and consumer (same process) need no clock sync.
const e2eStampLen = 8

// producerPool is Workload.Producers kgo clients, each fed by one goroutine
// that claims slots from the shared schedule. Clients are made in newPool
// and closed by close; produce may be called once.
type producerPool struct {
	clients []*kgo.Client
}

func newProducerPool(e *env) (*producerPool, error) {
	w := e.w
	codec, _ := parseCompression(w.Compression)
	opts := []kgo.Opt{
		kgo.SeedBrokers(w.Brokers...),
		kgo.DefaultProduceTopic(w.Topic),
		kgo.RequiredAcks(kgoAcks(e.acks)),
		kgo.ProducerLinger(w.Linger),
		kgo.ProducerBatchCompression(codec),
	}
	if w.BatchBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(w.BatchBytes))
	}
	if !w.idempotent() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if w.MaxInFlight > 0 {
		opts = append(opts, kgo.MaxBufferedRecords(w.MaxInFlight))
	}
	p := &producerPool{}
	for range w.Producers {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			p.close()
			return nil, err
		}
		p.clients = append(p.clients, cl)
	}
	return p, nil
}

// produce runs every producer until the schedule is exhausted, then flushes.
// onAck is called from kgo goroutines for each acknowledged record with the
// producer index, latency since the slot's start and payload bytes; failures
// go to e.rec.fail. With stamp, each value starts with its send time.
func (p *producerPool) produce(ctx context.Context, e *env, stamp bool, onAck func(producer int, lat time.Duration, n int)) {
	var wg sync.WaitGroup
	for i, cl := range p.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx, e, i, cl, stamp, onAck)
			// Flush waits for every buffered record's callback, so
			// the run ends at the last acknowledgement. The schedule,
			// not ctx, ends a normal run; ctx ends only an aborted one.
			_ = cl.Flush(ctx)
		}()
	}
	wg.Wait()
}

func (p *producerPool) loop(ctx context.Context, e *env, idx int, cl *kgo.Client, stamp bool,
	onAck func(int, time.Duration, int)) {
	rng := rand.New(rand.NewPCG(uint64(idx), uint64(e.rec.start.UnixNano())))
	for {
		due, ok := e.sched.wait(ctx, 1)
		if !ok {
			return
		}
		n := e.sizes.sample(rng)
		r := &kgo.Record{Value: e.payload[:n]}
		if stamp {
			// e2e needs a per-record value; the random tail stays shared content.
			v := make([]byte, n)
			copy(v, e.payload[:n])
			binary.BigEndian.PutUint64(v, uint64(due.Sub(e.rec.start)))
			r.Value = v
		}
		if e.w.Keys > 0 {
			r.Key = strconv.AppendInt(make([]byte, 0, 8), int64(rng.IntN(e.w.Keys)), 10)
		}
		size := len(r.Key) + n
		e.rec.sent.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				e.rec.fail(1, err)
				return
			}
			onAck(idx, time.Since(due), size)
		})
	}
}

func (p *producerPool) close() {
	for _, cl := range p.clients {
		cl.Close()
	}
}

// produceRunner measures produce → acknowledgement latency and throughput.
type produceRunner struct {
	pool *producerPool
}

func (r *produceRunner) prepare(_ context.Context, e *env) (err error) {
	r.pool, err = newProducerPool(e)
	return err
}

func (r *produceRunner) run(ctx context.Context, e *env) error {
	r.pool.produce(ctx, e, false, func(p int, lat time.Duration, n int) {
		e.rec.lat.record(p, lat)
		e.rec.done(n)
	})
	return ctx.Err()
}

func (r *produceRunner) close() {
	if r.pool != nil {
		r.pool.close()
	}
}
