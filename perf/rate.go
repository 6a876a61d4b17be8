package perf

import (
	"context"
	"sync/atomic"
	"time"
)

// schedule hands out send slots for one run, counted in records. With a
// rate, the slot starting at record i is due at start + i/rate: its intended
// send time. The sender waits for that time but never skips a slot when it
// is late, and latency is measured from the intended time, so when the
// broker stalls the backlog of late slots is charged to the broker (open
// loop, as OpenMessaging Benchmark does). Without a rate, every slot is due
// immediately and latency starts when the record is handed to the client
// (closed loop).
//
// A schedule is safe for concurrent use: slots are claimed with an atomic
// counter, so several producer goroutines or connections can share one.
type schedule struct {
	start    time.Time
	rate     float64   // records per second; 0 = max throughput
	limit    int64     // records to send, 0 = unbounded
	deadline time.Time // no slot is due at or after it; zero = none
	next     atomic.Int64
}

// newSchedule builds the plan: rate in records per second (0 = as fast as
// possible), bounded by a record count and/or a duration (0 = unbounded).
func newSchedule(start time.Time, rate float64, records int64, duration time.Duration) *schedule {
	s := &schedule{start: start, rate: max(rate, 0), limit: max(records, 0)}
	if duration > 0 {
		s.deadline = start.Add(duration)
	}
	return s
}

// wait claims a slot of n records (1 for a kgo record, a whole request in
// raw mode) and sleeps until it is due. It returns the slot's intended time
// (for max throughput: the time it returned) and false once the run is over
// (record count or time exhausted, or ctx done). A record count is met by
// whole slots, so raw mode may send up to one request more per connection.
func (s *schedule) wait(ctx context.Context, n int64) (time.Time, bool) {
	i := s.next.Add(n) - n
	if s.limit > 0 && i >= s.limit {
		return time.Time{}, false
	}
	if s.rate == 0 {
		now := time.Now()
		if ctx.Err() != nil || (!s.deadline.IsZero() && !now.Before(s.deadline)) {
			return time.Time{}, false
		}
		return now, true
	}
	// Computed per slot rather than as i*interval: a truncated interval
	// would drift and squeeze extra slots into the run (1/1500 s is not a
	// whole number of nanoseconds).
	due := s.start.Add(time.Duration(float64(i) / s.rate * float64(time.Second)))
	if !s.deadline.IsZero() && !due.Before(s.deadline) {
		return time.Time{}, false
	}
	// Sleep only when early; a late slot goes out at once, keeping its
	// intended time, which is what exposes a stall.
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Time{}, false
		case <-t.C:
		}
	} else if ctx.Err() != nil {
		return time.Time{}, false
	}
	return due, true
}

// expected is how many records the schedule plans, for the "remaining"
// part of the progress line; 0 when only time bounds the run.
func (s *schedule) expected() int64 { return s.limit }
