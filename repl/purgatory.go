package repl

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// waiter is a delayed acks=all produce: done once the HW covers required.
type waiter struct {
	required int64 // last offset + 1
	deadline time.Time
	done     func(error)
}

// WaitForAcks is the acks=all purgatory: done(nil) once the HW reaches
// lastOffset+1 with at least min.insync.replicas in the maximal ISR;
// done(NOT_ENOUGH_REPLICAS_AFTER_APPEND) if the HW got there with the ISR
// shrunk below min.insync.replicas (the records are written, but to too few
// replicas — Kafka's rule); done(REQUEST_TIMED_OUT) if timeout passes first
// (checked by Tick); done(NOT_LEADER_OR_FOLLOWER) on Resign. done runs
// exactly once, possibly before WaitForAcks returns, never under the lock.
// Safe for concurrent use.
func (l *Leader) WaitForAcks(lastOffset int64, timeout time.Duration, done func(error)) {
	l.mu.Lock()
	if l.resigned {
		l.mu.Unlock()
		done(kerr.NotLeaderForPartition)
		return
	}
	l.waiters = append(l.waiters, waiter{required: lastOffset + 1, deadline: l.cfg.Clock.Now().Add(timeout), done: done})
	fire := l.completeWaitersLocked()
	l.mu.Unlock()
	fire.run()
}

// completeWaitersLocked takes the waiters the HW now covers.
func (l *Leader) completeWaitersLocked() effects {
	var fire effects
	kept := l.waiters[:0]
	isr := l.isr.maximal()
	for _, w := range l.waiters {
		switch {
		case l.hw < w.required:
			kept = append(kept, w)
		case len(isr) < l.cfg.MinISR:
			fire.done = append(fire.done, doneCall{w.done, fmt.Errorf("%w: ISR %v, min.insync.replicas %d",
				kerr.NotEnoughReplicasAfterAppend, isr, l.cfg.MinISR)})
		default:
			fire.done = append(fire.done, doneCall{w.done, nil})
		}
	}
	clear(l.waiters[len(kept):])
	l.waiters = kept
	return fire
}

// expireWaitersLocked fails the waiters past their deadline.
func (l *Leader) expireWaitersLocked() []doneCall {
	now := l.cfg.Clock.Now()
	var out []doneCall
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if now.Before(w.deadline) {
			kept = append(kept, w)
			continue
		}
		out = append(out, doneCall{w.done, fmt.Errorf("%w: high watermark %d has not reached %d",
			kerr.RequestTimedOut, l.hw, w.required)})
	}
	clear(l.waiters[len(kept):])
	l.waiters = kept
	return out
}

// Waiting is how many acks=all produces wait. Safe for concurrent use.
func (l *Leader) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiters)
}
