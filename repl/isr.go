package repl

import (
	"slices"
	"time"
)

// follower is what the leader knows of one follower replica, learned only
// from that follower's fetches in the current leader epoch.
type follower struct {
	// leo is the follower's log end offset: its last fetch offset; -1 until
	// it fetched in this leader epoch.
	leo int64
	// lastCaughtUp is the last time the follower was known to have reached
	// the leader's LEO (Kafka's lastCaughtUpTimeMs).
	lastCaughtUp time.Time
	// lastFetch and lastFetchLeaderLEO are the previous fetch's time and the
	// leader's LEO then: a fetch reaching that LEO proves the follower was
	// caught up at the previous fetch's time.
	lastFetch          time.Time
	lastFetchLeaderLEO int64
}

// noteFetch applies Kafka's caught-up rule for a fetch at offset at time now
// while the leader's LEO is leaderLEO.
func (f *follower) noteFetch(offset, leaderLEO int64, now time.Time) {
	f.leo = offset
	switch {
	case offset >= leaderLEO:
		f.lastCaughtUp = laterOf(f.lastCaughtUp, now)
	case offset >= f.lastFetchLeaderLEO && !f.lastFetch.IsZero():
		f.lastCaughtUp = laterOf(f.lastCaughtUp, f.lastFetch)
	}
	f.lastFetch, f.lastFetchLeaderLEO = now, leaderLEO
}

// caughtUp is Kafka's isCaughtUp: at the leader's LEO, or caught up within
// the last lagMax.
func (f *follower) caughtUp(leaderLEO int64, now time.Time, lagMax time.Duration) bool {
	return f.leo == leaderLEO || (!f.lastCaughtUp.IsZero() && now.Sub(f.lastCaughtUp) <= lagMax)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// isrState is the ISR as KIP-497 keeps it: the committed ISR (the
// controller confirmed it) and, while an AlterPartition is in flight, the
// proposed one. The high watermark and acks=all use the maximal ISR (both
// together) so that neither a shrink nor an expansion is relied on before it
// is committed; min.insync.replicas before an append uses the committed one.
type isrState struct {
	committed []int32
	proposed  []int32 // nil: nothing in flight
}

func (s *isrState) pending() bool { return s.proposed != nil }

// maximal is committed ∪ proposed, in committed order then new members.
func (s *isrState) maximal() []int32 {
	if s.proposed == nil {
		return s.committed
	}
	out := slices.Clone(s.committed)
	for _, id := range s.proposed {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// without returns isr minus the ids in drop, keeping order.
func without(isr, drop []int32) []int32 {
	out := make([]int32, 0, len(isr))
	for _, id := range isr {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}
