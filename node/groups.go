package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/group"
	"github.com/sluicemq/sluice/segstore"
)

// offsetsTopic holds committed offsets and group metadata, in Kafka's
// record schemas, compacted. The group coordinator (package group) owns the
// logic; this file gives it the topic: creating it on first use (as Kafka
// does, on the first FindCoordinator for a group), replaying each partition
// into the coordinator before the partition is served, and appending the
// coordinator's records.
const offsetsTopic = "__consumer_offsets"

// groups wires the coordinator to the node.
//
// Concurrency: safe for concurrent use. ensure runs at most one creation at a
// time (mu); ready flips once every partition is loaded.
type groups struct {
	n     *Node
	coord *group.Coordinator
	parts int32      // partitions of the offsets topic the coordinator hashes groups over; fixed
	mu    sync.Mutex // serializes ensure
	ready atomic.Bool
	err   atomic.Pointer[error] // the last creation/load failure, for FindCoordinator's message
}

func (g *groups) loadErr() error {
	if e := g.err.Load(); e != nil {
		return *e
	}
	return nil
}

func newGroups(n *Node) *groups {
	g := &groups{n: n}
	cfg := n.cfg.Groups
	// Kafka's rule: offsets.topic.num.partitions only sizes the topic when
	// it is created. Once the topic exists its partition count says where
	// each group's records are; hashing over the configured count instead
	// would look for a group on the wrong partition (its offsets silently
	// gone) or fail to load partitions past the count.
	if t := n.reg.get(offsetsTopic); t != nil {
		if have := int32(len(n.reg.partitions(t))); have > 0 && have != cfg.Partitions {
			n.log.Warn(offsetsTopic+" exists with another partition count than offsets.topic.num.partitions; using the topic's",
				"partitions", have, "configured", cfg.Partitions)
			cfg.Partitions = have
		}
	}
	g.parts = cfg.Partitions
	cfg.TopicExists = func(topic string, partition int32) bool {
		return n.reg.partition(topic, partition) != nil
	}
	cfg.Logger = n.log
	g.coord = group.New(cfg, offsetsLog{n: n})
	return g
}

// start loads the offsets topic if it exists (Node.Start, in the
// background: until a partition is loaded its groups answer
// COORDINATOR_LOAD_IN_PROGRESS or, before that, FindCoordinator answers
// COORDINATOR_NOT_AVAILABLE and clients retry).
func (g *groups) start() {
	if g.n.reg.get(offsetsTopic) == nil {
		return
	}
	g.n.async.Add(1)
	go func() {
		defer g.n.async.Done()
		g.ensure()
	}()
}

// ensure creates the offsets topic if needed and loads every partition not
// yet loaded. It does disk I/O: never call it on an event loop.
func (g *groups) ensure() error {
	if g.ready.Load() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ready.Load() {
		return nil
	}
	t := g.n.reg.get(offsetsTopic)
	if t == nil {
		var err error
		t, err = g.n.createTopic(offsetsTopic, g.parts, g.replicationFactor(), map[string]string{
			"cleanup.policy":   "compact",
			"compression.type": "producer",
			"segment.bytes":    strconv.FormatInt(g.n.cfg.OffsetsSegmentBytes, 10),
		}, false)
		if err != nil && !errors.Is(err, errTopicExists) {
			g.err.Store(&err)
			g.n.log.Error("cannot create "+offsetsTopic, "err", err)
			return err
		}
		if t == nil {
			t = g.n.reg.get(offsetsTopic)
		}
		g.n.log.Info("created "+offsetsTopic, "partitions", g.parts)
	}
	if t == nil {
		return fmt.Errorf("%s vanished", offsetsTopic)
	}
	if g.n.cluster != nil {
		// Partitions load and unload as this broker gains and loses their
		// leadership (cluster_groups.go).
		g.ready.Store(true)
		return nil
	}
	for _, p := range g.n.reg.partitions(t) {
		if p.index >= g.parts {
			// Added by CreatePartitions after start: no group hashes there
			// until a restart takes the new count (Kafka also fixes it at
			// start).
			continue
		}
		if g.coord.Owns(p.index) {
			continue
		}
		if err := g.load(p); err != nil {
			g.err.Store(&err)
			g.n.log.Error("cannot load group coordinator partition", "partition", p.index, "err", err)
			return err
		}
	}
	g.ready.Store(true)
	return nil
}

// load replays one partition of the offsets topic into the coordinator.
func (g *groups) load(p *partition) error {
	l := p.getLog()
	if l == nil {
		return fmt.Errorf("partition %d has no log", p.index)
	}
	var readErr error
	err := g.coord.Load(p.index, func(yield func(key, value []byte) bool) {
		off := l.Offsets().Start
		var buf []byte
		for {
			end := l.Offsets().End
			if off >= end {
				return
			}
			var err error
			buf, err = l.ReadCopy(off, 1<<20, end, buf)
			if err != nil {
				readErr = err
				return
			}
			if len(buf) == 0 {
				return
			}
			stop := false
			used, err := walkBatches(buf, func(o int64, key, value []byte) error {
				if o < off {
					return nil
				}
				if !yield(key, value) {
					stop = true
					return errStopWalk
				}
				return nil
			})
			if stop {
				return
			}
			if err != nil {
				readErr = err
				return
			}
			if used == 0 {
				readErr = fmt.Errorf("short read at offset %d", off)
				return
			}
			off = lastOffsetIn(buf[:used]) + 1
		}
	})
	// Malformed records are skipped (and reported) but the partition is
	// loaded: one bad record must not take every group of it offline.
	var skipped *group.LoadError
	if errors.As(err, &skipped) {
		g.n.log.Warn("skipped malformed records in "+offsetsTopic, "partition", p.index, "err", err)
		err = nil
	}
	if err == nil && readErr != nil {
		// A partial replay must not be served: drop what was loaded.
		g.coord.Unload(p.index)
		err = readErr
	}
	return err
}

var errStopWalk = errors.New("stop")

// lastOffsetIn is the last offset of the last whole batch in buf.
func lastOffsetIn(buf []byte) int64 {
	var last int64 = -1
	for len(buf) >= 61 {
		size := 12 + int(int32(binary.BigEndian.Uint32(buf[8:])))
		base := int64(binary.BigEndian.Uint64(buf))
		last = base + int64(int32(binary.BigEndian.Uint32(buf[23:])))
		buf = buf[size:]
	}
	return last
}

// partitionOf maps a group to its offsets partition.
func (g *groups) partitionOf(groupID string) int32 {
	return group.PartitionFor(groupID, g.parts)
}

// offsetsLog appends the coordinator's records to __consumer_offsets.
type offsetsLog struct{ n *Node }

// Append implements group.Log: one batch per call, acknowledged once the
// log's flush policy says it is durable.
func (o offsetsLog) Append(partition int32, recs []group.Record, done func(error)) {
	p := o.n.reg.partition(offsetsTopic, partition)
	var l *segstore.Log
	if p != nil {
		l = p.getLog()
	}
	if l == nil {
		done(fmt.Errorf("%s-%d is not available", offsetsTopic, partition))
		return
	}
	buf := buildBatch(recs, o.n.cfg.Now().UnixMilli())
	// acks=-1 with Kafka's offsets.commit.timeout.ms: a commit is answered
	// once every in-sync replica has it.
	err := o.n.appendAsLeader(p, buf, -1, offsetsCommitTimeout, func(res segstore.AppendResult) {
		if res.Err != nil {
			done(coordinatorErr(res.Err))
			return
		}
		done(nil)
	})
	if err != nil {
		done(coordinatorErr(err))
	}
}

// coordinatorErr adds to a failed append the Kafka error it stands for, so
// the coordinator answers as Kafka's GroupMetadataManager maps produce
// errors: a commit over max.message.bytes gets INVALID_COMMIT_OFFSET_SIZE
// (not the retriable COORDINATOR_NOT_AVAILABLE a client would retry
// forever), a storage error or a closing log NOT_COORDINATOR. The original
// error stays in the chain for the log.
func coordinatorErr(err error) error {
	code := errCode(err)
	if code == kerr.UnknownServerError.Code {
		return err // unknown to Kafka's mapping: COORDINATOR_NOT_AVAILABLE
	}
	return fmt.Errorf("%w: %w", kerr.ErrorForCode(code), err)
}
