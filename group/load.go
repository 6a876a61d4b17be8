package group

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrClosed is returned by Load after Close.
var ErrClosed = errors.New("group: coordinator closed")

// LoadError reports records that Load skipped because they did not parse or
// belong to a group of another partition. The partition is loaded
// regardless (Owns is true): one bad record must not take every group of
// the partition offline. The node should log it.
type LoadError struct {
	Partition int32
	Skipped   int
	First     error // the first skipped record's problem
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("group: __consumer_offsets-%d: skipped %d malformed or misplaced records, first: %v",
		e.Partition, e.Skipped, e.First)
}

func (e *LoadError) Unwrap() error { return e.First }

// Load makes this coordinator own partition p: it replays the partition's
// records in offset order (recs yields key, value; value nil = tombstone),
// rebuilding groups (Empty ones keep their generation, ones with members are
// Stable and get fresh session timers so dead members expire; one over
// group.max.size starts a rebalance, as in Kafka) and offsets.
// Requests for groups of p answer COORDINATOR_LOAD_IN_PROGRESS while it
// runs (Heartbeat answers NONE and SyncGroup REBALANCE_IN_PROGRESS, as
// Kafka's do) and NOT_COORDINATOR when p is not owned. Record keys of newer
// types (KIP-848 groups) are skipped, as Kafka does. recs may reuse its
// buffers between yields.
//
// Load runs on the caller's goroutine and may be called concurrently for
// different partitions. If Unload(p) or Close runs meanwhile, Load discards
// what it built and returns an error.
func (c *Coordinator) Load(p int32, recs func(yield func(key, value []byte) bool)) error {
	if p < 0 || p >= c.cfg.Partitions {
		return fmt.Errorf("group: partition %d out of range [0, %d)", p, c.cfg.Partitions)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.parts[p] != partUnowned {
		c.mu.Unlock()
		return fmt.Errorf("group: partition %d is already loaded or loading", p)
	}
	c.parts[p] = partLoading
	epoch := c.loadEpoch[p]
	c.mu.Unlock()

	start := time.Now()
	r := c.replay(p, recs)
	groups := r.build(c, p)

	c.mu.Lock()
	if c.closed || c.loadEpoch[p] != epoch {
		c.mu.Unlock()
		for _, g := range groups {
			g.mu.Lock()
			g.dead, g.state = true, stateDead
			c.stopGroupTimers(g)
			g.mu.Unlock()
		}
		return fmt.Errorf("group: partition %d was unloaded while loading", p)
	}
	for _, g := range groups {
		c.groups[g.id] = g
	}
	c.parts[p] = partOwned
	c.mu.Unlock()
	c.rebalanceOverCapacity(groups)

	c.lg.Info("loaded group metadata", "partition", p, "groups", len(groups), "offsets", r.nOffsets,
		"records", r.nRecords, "skipped", r.skipped, "ignored", r.ignored, "took", time.Since(start))
	if r.skipped > 0 {
		return &LoadError{Partition: p, Skipped: r.skipped, First: r.first}
	}
	return nil
}

// rebalanceOverCapacity is the start of Kafka's onGroupLoaded: a group
// loaded with more members than group.max.size (the limit was lowered)
// rebalances at once, so the members rejoin and the last ones are turned
// away, instead of staying Stable over the limit until something else
// starts a rebalance.
func (c *Coordinator) rebalanceOverCapacity(groups []*group) {
	if c.cfg.MaxSize <= 0 {
		return
	}
	var fx effects
	for _, g := range groups {
		g.mu.Lock()
		if !g.dead && g.state == stateStable && len(g.members) > c.cfg.MaxSize {
			c.prepareRebalance(g, &fx, "freshly-loaded group is over capacity")
		}
		g.mu.Unlock()
		c.flush(&fx)
	}
}

type replayState struct {
	p        int32
	metas    map[string]*kmsg.GroupMetadataValue
	offsets  map[string]map[tp]offsetEntry
	nRecords int
	nOffsets int
	ignored  int // newer record types
	skipped  int
	first    error
}

func (r *replayState) skip(err error) {
	r.skipped++
	if r.first == nil {
		r.first = err
	}
}

// replay folds the records into the last value per key, as Kafka's
// loadGroupsAndOffsets does.
func (c *Coordinator) replay(p int32, recs func(yield func(key, value []byte) bool)) *replayState {
	r := &replayState{p: p, metas: map[string]*kmsg.GroupMetadataValue{}, offsets: map[string]map[tp]offsetEntry{}}
	recs(func(key, value []byte) bool {
		r.nRecords++
		k, err := parseKey(key)
		if err != nil {
			r.skip(fmt.Errorf("record %d: %w", r.nRecords-1, err))
			return true
		}
		if k.kind == keyUnknown {
			r.ignored++
			return true
		}
		if got := PartitionFor(k.group, c.cfg.Partitions); got != p {
			r.skip(fmt.Errorf("record %d: group %q belongs to partition %d", r.nRecords-1, k.group, got))
			return true
		}
		switch k.kind {
		case keyOffset:
			if value == nil {
				delete(r.offsets[k.group], k.tp)
				return true
			}
			e, err := parseOffsetValue(value)
			if err != nil {
				r.skip(fmt.Errorf("record %d (group %q): %w", r.nRecords-1, k.group, err))
				return true
			}
			m := r.offsets[k.group]
			if m == nil {
				m = map[tp]offsetEntry{}
				r.offsets[k.group] = m
			}
			m[k.tp] = e
		case keyGroup:
			if value == nil {
				delete(r.metas, k.group)
				return true
			}
			v, err := parseGroupValue(value)
			if err != nil {
				r.skip(fmt.Errorf("record %d (group %q): %w", r.nRecords-1, k.group, err))
				return true
			}
			r.metas[k.group] = v
		}
		return true
	})
	return r
}

// build turns the folded records into groups, with session timers running.
func (r *replayState) build(c *Coordinator, p int32) []*group {
	now := c.nowMs()
	byID := map[string]*group{}
	get := func(id string) *group {
		g := byID[id]
		if g == nil {
			g = newGroup(id, p, now)
			byID[id] = g
		}
		return g
	}
	for id, v := range r.metas {
		loadGroupValue(get(id), v)
	}
	for id, offs := range r.offsets {
		if len(offs) == 0 {
			continue
		}
		g := get(id)
		for k, e := range offs {
			e := e
			g.offsets[k] = &e
			r.nOffsets++
		}
	}
	out := make([]*group, 0, len(byID))
	for _, g := range byID {
		g.mu.Lock()
		for _, m := range g.members {
			c.heartbeat(g, m)
		}
		g.mu.Unlock()
		out = append(out, g)
	}
	return out
}

// loadGroupValue is GroupMetadata.loadGroup.
func loadGroupValue(g *group, v *kmsg.GroupMetadataValue) {
	g.generation = v.Generation
	g.stateMs = v.CurrentStateTimestamp
	if len(v.Members) == 0 {
		g.protocolType = v.ProtocolType
		g.state = stateEmpty
		return
	}
	name := *v.Protocol
	g.protocol = &name
	for i := range v.Members {
		vm := &v.Members[i]
		m := &member{
			id:                 vm.MemberID,
			instanceID:         cloneStr(vm.InstanceID),
			clientID:           vm.ClientID,
			clientHost:         vm.ClientHost,
			rebalanceTimeoutMs: vm.RebalanceTimeoutMillis,
			sessionTimeoutMs:   vm.SessionTimeoutMillis,
			protocolType:       v.ProtocolType,
			protocols:          []protocol{{name: name, metadata: vm.Subscription}},
			assignment:         vm.Assignment,
		}
		if v.Version == 0 {
			m.rebalanceTimeoutMs = m.sessionTimeoutMs // v0 records predate the rebalance timeout
		}
		g.add(m, nil)
	}
	g.protocolType = v.ProtocolType
	if v.Leader != nil && g.has(*v.Leader) {
		g.leader = *v.Leader
	}
	g.state = stateStable
	g.computeSubscribed()
}

// Unload drops p (leadership moved): its groups are forgotten, parked
// JoinGroup and SyncGroup requests get NOT_COORDINATOR (Kafka's
// onGroupUnloaded), and later requests for them NOT_COORDINATOR. Commits
// already handed to the Log are answered when it completes them.
// Safe for concurrent use; a no-op for a partition not owned.
func (c *Coordinator) Unload(p int32) {
	if p < 0 || p >= c.cfg.Partitions {
		return
	}
	c.mu.Lock()
	c.loadEpoch[p]++
	c.parts[p] = partUnowned
	var gs []*group
	for id, g := range c.groups {
		if g.part == p {
			gs = append(gs, g)
			delete(c.groups, id)
		}
	}
	c.mu.Unlock()
	var fx effects
	for _, g := range gs {
		g.mu.Lock()
		for _, m := range g.members {
			if m.join != nil {
				fx.join(m.join, joinError(m.id, kerr.NotCoordinator.Code))
				g.setJoin(m, nil)
			}
			if m.sync != nil {
				fx.sync(m.sync, kerr.NotCoordinator.Code, nil, nil, nil)
				m.sync = nil
			}
		}
		g.dead, g.state = true, stateDead
		c.stopGroupTimers(g)
		g.mu.Unlock()
	}
	if len(gs) > 0 {
		c.lg.Info("unloaded group metadata", "partition", p, "groups", len(gs))
	}
	c.flush(&fx)
}
