package perf

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumerPool is up to Workload.Consumers kgo clients with the topic's
// partitions assigned directly (p mod n), not through a group: a group join
// would put the rebalance, not the broker's fetch path, into the numbers.
// consume may be called once; close releases the clients.
type consumerPool struct {
	clients []*kgo.Client
	parts   [][]int32
}

func newConsumerPool(e *env, from map[int32]int64) (*consumerPool, error) {
	var all []int32
	for p := range e.meta.Partitions {
		all = append(all, p)
	}
	slices.Sort(all)
	n := min(e.w.Consumers, len(all))
	c := &consumerPool{parts: make([][]int32, n)}
	for i, p := range all {
		c.parts[i%n] = append(c.parts[i%n], p)
	}
	for _, ps := range c.parts {
		offs := make(map[int32]kgo.Offset, len(ps))
		for _, p := range ps {
			offs[p] = kgo.NewOffset().At(from[p])
		}
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(e.w.Brokers...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{e.w.Topic: offs}),
			// A short wait keeps an idle poll from delaying the end of a
			// run; fetches still return at once when data is there.
			kgo.FetchMaxWait(200*time.Millisecond),
		)
		if err != nil {
			c.close()
			return nil, err
		}
		c.clients = append(c.clients, cl)
	}
	return c, nil
}

// consume polls on every client until ctx ends or, when stopAt is non-nil,
// until each client's partitions have been read up to stopAt. onRecord runs
// on the polling goroutine of consumer i; it must be safe for concurrent use
// across consumers. Fetch errors other than ctx's go to e.rec.fail.
func (c *consumerPool) consume(ctx context.Context, e *env, stopAt map[int32]int64, onRecord func(i int, r *kgo.Record)) {
	var wg sync.WaitGroup
	for i, cl := range c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			left := map[int32]int64{}
			for _, p := range c.parts[i] {
				if stopAt == nil || stopAt[p] > 0 {
					left[p] = stopAt[p]
				}
			}
			for ctx.Err() == nil && (stopAt == nil || len(left) > 0) {
				fs := cl.PollFetches(ctx)
				for _, fe := range fs.Errors() {
					if !errors.Is(fe.Err, context.Canceled) && !errors.Is(fe.Err, context.DeadlineExceeded) {
						e.rec.fail(0, fe.Err)
					}
				}
				fs.EachRecord(func(r *kgo.Record) {
					onRecord(i, r)
					if end, ok := left[r.Partition]; ok && stopAt != nil && r.Offset+1 >= end {
						delete(left, r.Partition)
					}
				})
			}
		}()
	}
	wg.Wait()
}

func (c *consumerPool) close() {
	for _, cl := range c.clients {
		cl.Close()
	}
}

// consumeRunner reads what the topic holds, from each partition's start to
// the end offset listed when the run began, and reports throughput only:
// for data written earlier there is no send time to measure from.
type consumeRunner struct {
	pool   *consumerPool
	stopAt map[int32]int64
}

func (r *consumeRunner) prepare(ctx context.Context, e *env) error {
	from, err := startOffsets(ctx, e.adm, e.w.Topic)
	if err != nil {
		return err
	}
	if r.stopAt, err = endOffsets(ctx, e.adm, e.w.Topic); err != nil {
		return err
	}
	for p, end := range r.stopAt {
		if end <= from[p] {
			r.stopAt[p] = 0 // empty partition: nothing to wait for
		}
	}
	r.pool, err = newConsumerPool(e, from)
	return err
}

func (r *consumeRunner) run(ctx context.Context, e *env) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if e.w.Duration > 0 {
		runCtx, cancel = context.WithTimeout(runCtx, e.w.Duration)
		defer cancel()
	}
	r.pool.consume(runCtx, e, r.stopAt, func(_ int, rec *kgo.Record) {
		e.rec.done(len(rec.Key) + len(rec.Value))
		if e.w.Records > 0 && e.rec.records.Load() >= e.w.Records {
			cancel()
		}
	})
	return ctx.Err()
}

func (r *consumeRunner) close() {
	if r.pool != nil {
		r.pool.close()
	}
}
