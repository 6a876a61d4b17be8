package node

import (
	"sync"
	"sync/atomic"

	"github.com/sluicemq/sluice/repl"
	"github.com/sluicemq/sluice/segstore"
)

// partState is a partition's replication state, persisted with the metadata.
// Its shape is Kafka's (LeaderAndIsr): the Raft controller will own it once
// there is more than one broker.
type partState struct {
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// Cluster mode only (never persisted: the controller owns them).
	PartitionEpoch int32   `json:"-"`
	Offline        []int32 `json:"-"` // replicas on fenced brokers
}

// waiter is something parked until a partition changes (a long-poll fetch).
// wake must not block: it runs on the storage committer goroutine.
type waiter interface{ wake() }

// partition is one partition this broker leads.
//
// Concurrency: all methods are safe for concurrent use. st is immutable
// (replaced whole when leadership changes, which needs replication); the log
// is set once when created; hw only grows except on truncation.
type partition struct {
	topic *topic
	index int32

	log atomic.Pointer[segstore.Log]
	st  atomic.Pointer[partState]
	// hw is the high watermark: with the ISR being this broker alone it is
	// the LEO of completed (and, under log.flush.policy=ack, synced) writes.
	hw atomic.Int64

	// Cluster mode (cluster_part.go): exactly one of ldr and fol is set
	// while this broker leads or follows the partition in the current
	// leader epoch; neither while it is offline or being changed.
	ldr atomic.Pointer[repl.Leader]
	fol atomic.Pointer[repl.Follower]

	nwatch   atomic.Int32
	watchMu  sync.Mutex
	watchers map[waiter]struct{}
}

func newPartition(t *topic, idx int32, l *segstore.Log, st partState) *partition {
	p := &partition{topic: t, index: idx}
	p.st.Store(&st)
	if l != nil {
		p.setLog(l)
	}
	return p
}

func (p *partition) setLog(l *segstore.Log) {
	p.hw.Store(l.Offsets().End)
	p.log.Store(l)
}

// getLog is nil until the partition's log is created (LEADER_NOT_AVAILABLE)
// and after the topic is deleted.
func (p *partition) getLog() *segstore.Log { return p.log.Load() }

func (p *partition) state() partState { return *p.st.Load() }

func (p *partition) leaderEpoch() int32 { return p.st.Load().LeaderEpoch }

// advanceHW moves the high watermark to end if that is further, then wakes
// parked fetches. Called from append completions (committer goroutine).
func (p *partition) advanceHW(end int64) {
	for {
		cur := p.hw.Load()
		if end <= cur {
			// Unchanged: waking parked fetches would only make them read
			// again (and, for followers, report again, which may call
			// here again: a busy loop between two parked followers).
			return
		}
		if p.hw.CompareAndSwap(cur, end) {
			break
		}
	}
	p.notify()
}

// setHW sets the high watermark (a follower's can move back after a
// truncation) and wakes parked fetches if it changed.
func (p *partition) setHW(hw int64) {
	if p.hw.Swap(hw) != hw {
		p.notify()
	}
}

// close detaches the log (the topic is being deleted) and wakes watchers so
// parked fetches answer UNKNOWN_TOPIC_OR_PARTITION now.
func (p *partition) close() {
	p.log.Store(nil)
	p.notify()
}

// watch registers w to be woken on the next change; unwatch removes it.
func (p *partition) watch(w waiter) {
	p.watchMu.Lock()
	if p.watchers == nil {
		p.watchers = map[waiter]struct{}{}
	}
	p.watchers[w] = struct{}{}
	p.nwatch.Store(int32(len(p.watchers)))
	p.watchMu.Unlock()
}

func (p *partition) unwatch(w waiter) {
	p.watchMu.Lock()
	delete(p.watchers, w)
	p.nwatch.Store(int32(len(p.watchers)))
	p.watchMu.Unlock()
}

// notify wakes every watcher. The atomic count keeps the append path free
// of the lock when nobody waits, which is the common case under load.
func (p *partition) notify() {
	if p.nwatch.Load() == 0 {
		return
	}
	p.watchMu.Lock()
	for w := range p.watchers {
		w.wake()
	}
	p.watchMu.Unlock()
}
