package group

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partState is whether this coordinator serves a __consumer_offsets partition.
type partState int8

const (
	partUnowned partState = iota
	partLoading
	partOwned
)

// Coordinator is the classic group coordinator for the __consumer_offsets
// partitions it owns. See the package documentation for its rules.
type Coordinator struct {
	cfg   Config
	log   Log
	clock Clock
	lg    *slog.Logger

	mu        sync.Mutex // guards parts, loadEpoch, groups, closed, expiryTimer
	parts     []partState
	loadEpoch []uint64 // bumped by Unload so a Load running concurrently notices
	groups    map[string]*group
	closed    bool

	expiryTimer Timer

	aq appendQueue
}

// New returns a coordinator that owns no partition yet. Zero Partitions and
// RetentionCheckInterval take Kafka's defaults; nil Clock is real time, nil
// Logger is slog.Default(). The offset-expiry timer starts here; Close stops
// it.
func New(cfg Config, log Log) *Coordinator {
	def := DefaultConfig()
	if cfg.Partitions <= 0 {
		cfg.Partitions = def.Partitions
	}
	if cfg.RetentionCheckInterval <= 0 {
		cfg.RetentionCheckInterval = def.RetentionCheckInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Coordinator{
		cfg:       cfg,
		log:       log,
		clock:     cfg.Clock,
		lg:        cfg.Logger.With("component", "group"),
		parts:     make([]partState, cfg.Partitions),
		loadEpoch: make([]uint64, cfg.Partitions),
		groups:    map[string]*group{},
	}
	c.mu.Lock()
	c.armExpiry()
	c.mu.Unlock()
	return c
}

func (c *Coordinator) nowMs() int64 { return c.clock.Now().UnixMilli() }

func (c *Coordinator) topicExists(topic string, partition int32) bool {
	if partition < 0 {
		return false
	}
	if c.cfg.TopicExists == nil {
		return true
	}
	return c.cfg.TopicExists(topic, partition)
}

// Owns reports whether partition p is loaded and served here.
// Safe for concurrent use.
func (c *Coordinator) Owns(p int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return p >= 0 && p < c.cfg.Partitions && c.parts[p] == partOwned
}

// Groups counts the served groups by state name (for metrics).
// Safe for concurrent use.
func (c *Coordinator) Groups() map[string]int {
	out := map[string]int{}
	for _, g := range c.snapshotGroups() {
		g.mu.Lock()
		if !g.dead {
			out[g.state.String()]++
		}
		g.mu.Unlock()
	}
	return out
}

func (c *Coordinator) snapshotGroups() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	return gs
}

// Close stops every timer and unloads every partition: parked JoinGroup and
// SyncGroup requests get NOT_COORDINATOR (Kafka's unload path, which its
// coordinator runtime also takes on shutdown) so clients look for the new
// coordinator; later requests get COORDINATOR_NOT_AVAILABLE. Appends already
// handed to the Log still complete through their callbacks.
// Safe for concurrent use; idempotent.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.expiryTimer != nil {
		c.expiryTimer.Stop()
		c.expiryTimer = nil
	}
	c.mu.Unlock()
	for p := int32(0); p < c.cfg.Partitions; p++ {
		c.Unload(p)
	}
}

// status is Kafka's validateGroupStatus after the group id check: whether
// this coordinator can answer for groupID now (0 if so).
func (c *Coordinator) status(groupID string) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked(PartitionFor(groupID, c.cfg.Partitions))
}

func (c *Coordinator) statusLocked(p int32) int16 {
	if c.closed {
		return kerr.CoordinatorNotAvailable.Code
	}
	switch c.parts[p] {
	case partLoading:
		return kerr.CoordinatorLoadInProgress.Code
	case partOwned:
		return 0
	}
	return kerr.NotCoordinator.Code
}

// lockGroup returns the live group, locked, or a status code. With create it
// makes an Empty group when there is none; without, a missing group is
// (nil, 0). A group found dead was removed while we waited for its lock, so
// look again: the partition may be gone or a new group may exist.
func (c *Coordinator) lockGroup(id string, create bool) (*group, int16) {
	for {
		c.mu.Lock()
		p := PartitionFor(id, c.cfg.Partitions)
		if code := c.statusLocked(p); code != 0 {
			c.mu.Unlock()
			return nil, code
		}
		g := c.groups[id]
		if g == nil {
			if !create {
				c.mu.Unlock()
				return nil, 0
			}
			g = newGroup(id, p, c.nowMs())
			c.groups[id] = g
		}
		c.mu.Unlock()
		g.mu.Lock()
		if !g.dead {
			return g, 0
		}
		g.mu.Unlock()
	}
}

// markDead removes g from the coordinator and stops all its timers; pending
// requests must have been answered. g.mu held (lock order: group, then
// coordinator).
func (c *Coordinator) markDead(g *group) {
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
	g.dead = true
	g.state = stateDead
	c.stopGroupTimers(g)
}

func (c *Coordinator) stopGroupTimers(g *group) {
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
			m.timer = nil
		}
		m.timerGen++
	}
	for _, pm := range g.pending {
		if pm.timer != nil {
			pm.timer.Stop()
		}
		pm.gen++
	}
	c.stopJoinTimer(g)
	c.stopSyncTimer(g)
}

// dropIfVacuous removes a group that only a rejected request created.
// g.mu held.
func (c *Coordinator) dropIfVacuous(g *group) {
	if !g.dead && g.vacuous() {
		c.markDead(g)
	}
}

// effects collects what a locked section decided to tell the outside world,
// to be done after every lock is released: respond and Log.Append may call
// back into the coordinator synchronously.
type effects struct {
	replies []reply
}

type reply struct {
	respond func(kmsg.Response)
	resp    kmsg.Response
}

func (fx *effects) reply(respond func(kmsg.Response), r kmsg.Response) {
	fx.replies = append(fx.replies, reply{respond, r})
}

// flush issues queued appends, then answers. No lock may be held.
func (c *Coordinator) flush(fx *effects) {
	c.aq.drain(c.log)
	for i, r := range fx.replies {
		fx.replies[i] = reply{}
		r.respond(r.resp)
	}
	fx.replies = fx.replies[:0]
}

// appendQueue keeps Log.Append calls in the order the coordinator decided
// them (each decision is made under a group lock and enqueued before that
// lock is released), while issuing them with no lock held. Whoever finds the
// queue idle drains it; an Append whose done runs synchronously and queues
// more just leaves them to the draining loop.
type appendQueue struct {
	mu       sync.Mutex // leaf lock
	items    []appendItem
	head     int // items[head:] are waiting; the array is reused once drained
	draining bool
}

type appendItem struct {
	part int32
	recs []Record
	done func(error)
}

func (q *appendQueue) push(part int32, recs []Record, done func(error)) {
	q.mu.Lock()
	q.items = append(q.items, appendItem{part, recs, done})
	q.mu.Unlock()
}

func (q *appendQueue) drain(log Log) {
	q.mu.Lock()
	if q.draining {
		q.mu.Unlock()
		return
	}
	q.draining = true
	for q.head < len(q.items) {
		it := q.items[q.head]
		q.items[q.head] = appendItem{}
		q.head++
		q.mu.Unlock()
		log.Append(it.part, it.recs, it.done)
		q.mu.Lock()
	}
	q.items, q.head = q.items[:0], 0
	q.draining = false
	q.mu.Unlock()
}

// appendErrorCode maps a failed Log.Append to what Kafka's
// GroupMetadataManager answers; commit selects the offset-commit mapping
// (storeOffsets) over the group-metadata one (storeGroup).
func appendErrorCode(err error, commit bool) int16 {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return kerr.CoordinatorNotAvailable.Code
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		if commit {
			return kerr.InvalidCommitOffsetSize.Code
		}
		return kerr.UnknownServerError.Code
	case kerr.RequestTimedOut:
		if !commit {
			return kerr.RebalanceInProgress.Code
		}
	}
	return ke.Code
}

// msDuration converts a client-supplied millisecond timeout; negative values
// (never accepted for sessions, possible for rebalance timeouts) count as
// zero.
func msDuration(ms int32) time.Duration {
	if ms < 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}
