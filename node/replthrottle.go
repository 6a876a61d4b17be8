package node

import (
	"math"
	"sync"
	"time"
)

// Replication throttles (Kafka's replication quotas, KIP-73), used to bound
// the traffic of a reassignment's catch-up copy:
//
//   - Broker configs leader.replication.throttled.rate and
//     follower.replication.throttled.rate (bytes/s; default Long.MAX_VALUE,
//     unthrottled) are dynamic, set through AlterConfigs or
//     IncrementalAlterConfigs on a BROKER resource: this broker's id, or ""
//     for the cluster-wide default (a broker's own value wins). Cluster mode
//     only: they live in the controller's metadata (ctrl.State.BrokerConfigs).
//   - Topic configs leader.replication.throttled.replicas and
//     follower.replication.throttled.replicas: "*" or a list of
//     partition:broker entries (default empty). A broker throttles a
//     partition on one side only when the list names that partition with its
//     own id, or is "*".
//
// What is throttled (sluice's rule; Kafka's differs in details):
//
//   - Leader side (fetchOp.readForFollower): a replica fetch of a partition
//     listed in leader.replication.throttled.replicas for this broker, from a
//     follower that is not in the partition's ISR, reads nothing while the
//     leader quota is used up (the follower gets an empty answer for it this
//     round; the fetch parks until the quota frees or its wait ends). Bytes
//     sent for such partitions are charged to the quota when the answer is
//     framed.
//   - Follower side (fetcher.collect/round): a partition listed in
//     follower.replication.throttled.replicas for this broker, of which this
//     broker is not in the ISR, is left out of the fetch request while the
//     follower quota is used up; the bytes received for such partitions are
//     charged when the answer comes.
//   - A fetch for a partition whose follower is in the ISR is never
//     throttled on either side, so acks=all latency is not throttled. The ISR
//     is the committed one of the metadata this broker has applied.
//   - Each side has one quota per broker, shared by all its throttled
//     partitions (and, on the leader, by all followers).
//
// The quota (byteQuota) is a token bucket that may go into debt: a fetch is
// allowed while the balance is not negative, its bytes are subtracted once
// known (so one response may overshoot), and the balance refills at the
// rate up to quotaBurst worth of bytes. Over any interval T the throttled
// bytes are at most rate*(T+quotaBurst) plus one response. Kafka measures a
// rate over a window of 11 one-second samples instead, which lets a copy
// that starts after a quiet period run unthrottled for up to ten seconds'
// worth of bytes; the short burst here keeps the copy at the rate from the
// start.

// Config names.
const (
	leaderThrottledRate       = "leader.replication.throttled.rate"
	followerThrottledRate     = "follower.replication.throttled.rate"
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
)

// quotaBurst is how much unused allowance a quota saves up.
const quotaBurst = 200 * time.Millisecond

// quotaRecheck is how soon a quota with rate 0 (nothing may pass) is looked
// at again: only a config change can free it.
const quotaRecheck = time.Second

// byteQuota limits throttled replication bytes to a rate.
//
// Concurrency: every method is safe for concurrent use.
type byteQuota struct {
	now func() time.Time

	mu      sync.Mutex
	rate    int64   // bytes/s; math.MaxInt64: unlimited
	balance float64 // bytes that may still pass; negative: debt
	last    time.Time
}

func newByteQuota(now func() time.Time) *byteQuota {
	if now == nil {
		now = time.Now
	}
	return &byteQuota{now: now, rate: math.MaxInt64}
}

func (q *byteQuota) burst() float64 { return float64(q.rate) * quotaBurst.Seconds() }

// refillLocked brings the balance up to now.
func (q *byteQuota) refillLocked(now time.Time) {
	if el := now.Sub(q.last); el > 0 && !q.last.IsZero() {
		q.balance = min(q.balance+el.Seconds()*float64(q.rate), q.burst())
	}
	q.last = now
}

// setRate changes the rate (bytes/s; negative or math.MaxInt64:
// unlimited). Going from unlimited to a limit starts with a full burst;
// a debt carries over between limits.
func (q *byteQuota) setRate(rate int64) {
	if rate < 0 {
		rate = math.MaxInt64
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if rate == q.rate {
		return
	}
	now := q.now()
	if q.rate != math.MaxInt64 {
		q.refillLocked(now)
	}
	wasUnlimited := q.rate == math.MaxInt64
	q.rate, q.last = rate, now
	if wasUnlimited {
		q.balance = q.burst()
	} else {
		q.balance = min(q.balance, q.burst())
	}
}

// unlimited reports whether no limit is set.
func (q *byteQuota) unlimited() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rate == math.MaxInt64
}

// readyAt returns the zero time when a throttled fetch may go now, else
// when it may (the debt is repaid).
func (q *byteQuota) readyAt() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.rate == math.MaxInt64 {
		return time.Time{}
	}
	now := q.now()
	q.refillLocked(now)
	switch {
	case q.rate == 0:
		return now.Add(quotaRecheck) // nothing passes: no burst, no refill
	case q.balance >= 0:
		return time.Time{}
	}
	wait := time.Duration(-q.balance / float64(q.rate) * float64(time.Second))
	return now.Add(max(wait, time.Millisecond))
}

// record charges n throttled bytes.
func (q *byteQuota) record(n int64) {
	if n <= 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.rate == math.MaxInt64 {
		return
	}
	q.refillLocked(q.now())
	q.balance -= float64(n)
}
