package perf

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// e2eDrain bounds how long consumers may lag behind the last acknowledged
// produce before the run gives up on the missing records (counted as errors).
const e2eDrain = 15 * time.Second

// e2eRunner produces and consumes at once. Each value carries its send time
// (intended time under a rate), so latency is send → consume, the delay a
// downstream reader sees; produce → ack is kept beside it.
type e2eRunner struct {
	producers *producerPool
	consumers *consumerPool
}

func (r *e2eRunner) prepare(ctx context.Context, e *env) error {
	// Consumers start exactly where the log ends now, so everything they
	// read was produced by this run and carries a stamp.
	from, err := endOffsets(ctx, e.adm, e.w.Topic)
	if err != nil {
		return err
	}
	if r.consumers, err = newConsumerPool(e, from); err != nil {
		return err
	}
	r.producers, err = newProducerPool(e)
	return err
}

func (r *e2eRunner) run(ctx context.Context, e *env) error {
	var acked atomic.Int64
	var producing atomic.Bool
	producing.Store(true)
	consCtx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		r.consumers.consume(consCtx, e, nil, func(i int, rec *kgo.Record) {
			if len(rec.Value) < e2eStampLen {
				e.rec.fail(1, fmt.Errorf("e2e: %s/%d@%d has no send time: foreign data in the topic?",
					rec.Topic, rec.Partition, rec.Offset))
				return
			}
			sent := time.Duration(binary.BigEndian.Uint64(rec.Value))
			e.rec.lat.record(i, time.Since(e.rec.start)-sent)
			e.rec.done(len(rec.Key) + len(rec.Value))
			if !producing.Load() && e.rec.records.Load() >= acked.Load() {
				stopConsumers()
			}
		})
	}()

	r.producers.produce(ctx, e, true, func(p int, lat time.Duration, _ int) {
		e.rec.ack.record(p, lat)
		acked.Add(1)
	})
	producing.Store(false)
	e.produced = acked.Load()
	if e.rec.records.Load() >= e.produced {
		stopConsumers()
	}
	select {
	case <-consDone:
	case <-time.After(e2eDrain):
		stopConsumers()
		<-consDone
	}
	if missing := e.produced - e.rec.records.Load(); missing > 0 {
		e.rec.fail(missing, fmt.Errorf("e2e: %d acknowledged records not consumed within %s", missing, e2eDrain))
	}
	return ctx.Err()
}

func (r *e2eRunner) close() {
	if r.producers != nil {
		r.producers.close()
	}
	if r.consumers != nil {
		r.consumers.close()
	}
}
