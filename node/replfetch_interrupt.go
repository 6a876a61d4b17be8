package node

import (
	"context"
	"errors"
)

// Interrupting a fetch parked at the leader when a partition joins its
// fetcher (see addedLocked).

// errPartitionsAdded is the cause of a fetch interrupted by addedLocked.
var errPartitionsAdded = errors.New("partitions added to the fetcher")

// addedLocked runs under r.mu when a partition was added to fe.parts: a
// sleeping fetcher wakes, and a request in flight without it is cut off
// (its connection closed: kconn matches answers to requests in order, so a
// parked request cannot be overtaken) and sent again with it right away.
// Without this a partition whose leader this broker already fetches from
// waits for the parked fetch to end, up to replica.fetch.wait.max.ms; the
// price is one reconnect. Removals interrupt nothing: the answer for a
// partition no longer followed is dropped, and nothing waits for it.
func (fe *fetcher) addedLocked() {
	fe.added++
	if fe.inflight != nil {
		fe.inflight(errPartitionsAdded)
		fe.inflight = nil
	}
	fe.poke()
}

// sending registers cancel as the way to interrupt the request about to be
// sent, built from the partitions there were when fe.added was gen. It
// reports false when a partition was added since: the batch is stale, so
// collect again rather than park without it.
func (fe *fetcher) sending(gen uint64, cancel context.CancelCauseFunc) bool {
	fe.r.mu.Lock()
	defer fe.r.mu.Unlock()
	if fe.added != gen {
		return false
	}
	fe.inflight = cancel
	return true
}

// answered ends what sending registered.
func (fe *fetcher) answered() {
	fe.r.mu.Lock()
	fe.inflight = nil
	fe.r.mu.Unlock()
}
