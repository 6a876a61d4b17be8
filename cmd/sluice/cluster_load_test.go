package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ackRec is one acknowledged record: where the broker said it put it.
type ackRec struct {
	part int32
	off  int64
	id   int64
}

// loadProducer writes records with unique ids (key and value "id-<n>") to a
// topic until finish, and keeps every acknowledgement. It measures the
// longest gap between two consecutive acknowledgements (the worst produce
// stall a fault caused).
//
// Concurrency: start and finish from the test goroutine; the accessors are
// safe to call while it runs.
type loadProducer struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
	stop  chan struct{}
	done  chan struct{}
	ctx   context.Context // records' context: cancelled only if finish gives up
	abort context.CancelFunc
	cbs   sync.WaitGroup
	next  atomic.Int64 // ids handed out

	mu       sync.Mutex
	acked    []ackRec
	failed   map[string]int // terminal errors by text
	lastAck  time.Time
	maxStall time.Duration
	stallEnd time.Time
	winStall time.Duration // longest gap since the last takeStall
	winEnd   time.Time     // when it ended
}

// startLoad starts producing to topic through cl (which sets acks,
// idempotence, partitioner and buffering). rate > 0 paces the producer to
// about rate records a second (in bursts each millisecond); 0 produces as
// fast as the cluster acknowledges.
func startLoad(t *testing.T, cl *kgo.Client, topic string, rate int) *loadProducer {
	lp := &loadProducer{t: t, cl: cl, topic: topic, stop: make(chan struct{}), done: make(chan struct{}),
		failed: map[string]int{}}
	lp.ctx, lp.abort = context.WithCancel(context.Background())
	go lp.run(rate)
	return lp
}

func (lp *loadProducer) run(rate int) {
	defer close(lp.done)
	burst, start := max(rate/1000, 1), time.Now()
	for sent := 0; ; sent++ {
		select {
		case <-lp.stop:
			return
		default:
		}
		if rate > 0 && sent%burst == 0 {
			// Sleep until this burst is due: sent records at rate/s.
			if d := time.Duration(float64(sent) / float64(rate) * float64(time.Second)); time.Since(start) < d {
				select {
				case <-lp.stop:
					return
				case <-time.After(d - time.Since(start)):
				}
			}
		}
		lp.produceOne()
	}
}

func (lp *loadProducer) produceOne() {
	id := lp.next.Add(1)
	v := []byte("id-" + strconv.FormatInt(id, 10))
	lp.cbs.Add(1)
	lp.cl.Produce(lp.ctx, &kgo.Record{Topic: lp.topic, Key: v, Value: v}, func(r *kgo.Record, err error) {
		defer lp.cbs.Done()
		now := time.Now()
		lp.mu.Lock()
		defer lp.mu.Unlock()
		if err != nil {
			lp.failed[err.Error()]++
			return
		}
		lp.acked = append(lp.acked, ackRec{part: r.Partition, off: r.Offset, id: id})
		if !lp.lastAck.IsZero() {
			gap := now.Sub(lp.lastAck)
			if gap > lp.maxStall {
				lp.maxStall, lp.stallEnd = gap, now
			}
			if gap > lp.winStall {
				lp.winStall, lp.winEnd = gap, now
			}
		}
		lp.lastAck = now
	})
}

func (lp *loadProducer) ackedCount() int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return len(lp.acked)
}

// waitAcked waits until n more records than now are acknowledged.
func (lp *loadProducer) waitAcked(n int, timeout time.Duration) {
	lp.t.Helper()
	want := lp.ackedCount() + n
	deadline := time.Now().Add(timeout)
	for lp.ackedCount() < want {
		if time.Now().After(deadline) {
			lp.t.Fatalf("producer: only %d of %d acknowledgements within %v (terminal errors: %v)",
				lp.ackedCount(), want, timeout, lp.errors())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// takeStall returns the longest gap between two acknowledgements since the
// last call (a fault's write outage) and when it ended, and starts a new
// window.
func (lp *loadProducer) takeStall() (time.Duration, time.Time) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	d, end := lp.winStall, lp.winEnd
	lp.winStall = 0
	return d, end
}

func (lp *loadProducer) errors() map[string]int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	out := map[string]int{}
	for k, v := range lp.failed {
		out[k] = v
	}
	return out
}

// finish stops producing and waits for every record to be acknowledged or
// failed. It fails the test if that takes longer than timeout (a stuck
// producer: some partition never became writable again).
func (lp *loadProducer) finish(timeout time.Duration) {
	lp.t.Helper()
	close(lp.stop)
	<-lp.done
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := lp.cl.Flush(ctx); err != nil {
		lp.abort()
		lp.t.Errorf("producer: flush did not finish within %v (%v): records stuck", timeout, err)
	}
	waitTimeout(lp.t, &lp.cbs, 30*time.Second, "produce callbacks")
}

// summary is the producer's figures, for t.Logf.
func (lp *loadProducer) summary() string {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	failed := 0
	var kinds []string
	for k, v := range lp.failed {
		failed += v
		kinds = append(kinds, fmt.Sprintf("%dx %s", v, k))
	}
	sort.Strings(kinds)
	s := fmt.Sprintf("%d records produced, %d acknowledged, %d failed terminally; longest gap between acks %v (ended %s)",
		lp.next.Load(), len(lp.acked), failed, lp.maxStall.Round(time.Millisecond), lp.stallEnd.Format("15:04:05.000"))
	if len(kinds) > 0 {
		s += "; errors: " + strings.Join(kinds, "; ")
	}
	return s
}

// parseID reads the id of a record the loadProducer wrote, or -1.
func parseID(v []byte) int64 {
	s, ok := strings.CutPrefix(string(v), "id-")
	if !ok {
		return -1
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return -1
	}
	return id
}
