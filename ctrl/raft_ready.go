package ctrl

import (
	"encoding/binary"
	"fmt"
	"math"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Process runs one Ready cycle if raft has one, in the order raft's contract requires:
//  1. persist the snapshot, hard state and entries (fsynced) and add them to the in-memory storage;
//  2. send messages (only now: a vote or append ack must not leave before what it promises is durable);
//  3. apply committed entries to the State, resolving proposals;
//  4. Advance; then maybe snapshot and compact.
//
// It reports whether there was anything to do. A storage error is sticky: the Node stops and every later call
// returns it. Safe for concurrent use; callbacks run on the calling goroutine after the lock is released.
func (n *Node) Process() (bool, error) {
	n.mu.Lock()
	before := n.state.AppliedIndex
	did, err := n.processLocked()
	after := n.state.AppliedIndex
	if after != before {
		n.appliedMoved()
		n.completeReassignments()
	}
	onApply := n.cfg.OnApply
	cbs := n.takeCallbacks()
	n.mu.Unlock()
	for _, cb := range cbs {
		cb()
	}
	if after != before && onApply != nil {
		onApply(after)
	}
	return did, err
}

// appliedMoved wakes everyone waiting for the applied index to move (see waitApplied). Runs under mu.
func (n *Node) appliedMoved() {
	if n.applied != nil {
		close(n.applied)
		n.applied = nil
	}
}

func (n *Node) takeCallbacks() []func() {
	cbs := n.ready
	n.ready = nil
	return cbs
}

func (n *Node) processLocked() (bool, error) {
	if n.err != nil {
		return false, n.err
	}
	if !n.rn.HasReady() {
		return false, nil
	}
	rd := n.rn.Ready()
	if err := n.persist(rd); err != nil {
		n.stopLocked(err)
		return true, err
	}
	if len(rd.Messages) > 0 {
		n.cfg.Transport.Send(rd.Messages)
	}
	if err := n.applyEntries(rd.CommittedEntries); err != nil {
		n.stopLocked(err)
		return true, err
	}
	if rd.SoftState != nil {
		n.leadershipChanged(rd.SoftState.RaftState == raft.StateLeader)
		n.leaderSeen(rd.SoftState.Lead)
	}
	n.rn.Advance(rd)
	if err := n.maybeSnapshot(); err != nil {
		n.stopLocked(err)
		return true, err
	}
	return true, nil
}

func (n *Node) persist(rd raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		// A snapshot from the leader replaces everything up to its index, state machine included.
		st, err := UnmarshalSnapshot(rd.Snapshot.Data)
		if err != nil {
			return err
		}
		if err := n.wal.SaveSnapshot(rd.Snapshot, rd.HardState, rd.Entries); err != nil {
			return err
		}
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("ctrl: apply snapshot: %w", err)
		}
		st.AppliedIndex = rd.Snapshot.Metadata.Index
		n.state, n.confState, n.snapIndex = st, rd.Snapshot.Metadata.ConfState, rd.Snapshot.Metadata.Index
		n.state.uncleanDefault = n.cfg.UncleanLeaderElection
	} else if err := n.wal.Save(rd.HardState, rd.Entries); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("ctrl: set hard state: %w", err)
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("ctrl: append entries: %w", err)
	}
	return nil
}

// Entry data is an 16-byte header, the proposer's raft id and its proposal sequence number, then the encoded
// Record. The header lets the proposer recognise its own entry when it is applied.
const entryHeader = 16

func (n *Node) applyEntries(ents []raftpb.Entry) error {
	for _, e := range ents {
		if e.Index <= n.state.AppliedIndex {
			continue // covered by a snapshot already applied
		}
		switch e.Type {
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			if err := n.applyConfChange(e); err != nil {
				return err
			}
			n.state.AppliedIndex = e.Index
			continue
		}
		if len(e.Data) == 0 { // a new leader's empty entry
			n.state.AppliedIndex = e.Index
			continue
		}
		var applyErr error
		var proposer, seq uint64
		if len(e.Data) < entryHeader {
			applyErr = fmt.Errorf("%w: entry %d is %d bytes, shorter than its header", ErrInvalidRecord, e.Index, len(e.Data))
			n.state.AppliedIndex = e.Index
		} else {
			proposer, seq = binary.BigEndian.Uint64(e.Data), binary.BigEndian.Uint64(e.Data[8:])
			rec, err := DecodeRecord(e.Data[entryHeader:])
			if err != nil {
				applyErr = fmt.Errorf("%w: entry %d: %w", ErrInvalidRecord, e.Index, err)
				n.state.AppliedIndex = e.Index
			} else {
				applyErr = n.state.Apply(rec, e.Index)
			}
		}
		if proposer == n.cfg.ID {
			if done := n.pending[seq]; done != nil {
				delete(n.pending, seq)
				idx := e.Index
				n.ready = append(n.ready, func() { done(idx, applyErr) })
			}
		}
	}
	return nil
}

func (n *Node) applyConfChange(e raftpb.Entry) error {
	var cc raftpb.ConfChangeI
	if e.Type == raftpb.EntryConfChange {
		var c raftpb.ConfChange
		if err := c.Unmarshal(e.Data); err != nil {
			return fmt.Errorf("ctrl: conf change at %d: %w", e.Index, err)
		}
		cc = c
	} else {
		var c raftpb.ConfChangeV2
		if err := c.Unmarshal(e.Data); err != nil {
			return fmt.Errorf("ctrl: conf change at %d: %w", e.Index, err)
		}
		cc = c
	}
	n.confState = *n.rn.ApplyConfChange(cc)
	return nil
}

// maybeSnapshot snapshots the applied state every SnapshotEvery entries, keeps the log after it (and up to
// SnapshotEvery/2 entries before it in memory, so a follower a little behind gets entries, not a snapshot).
func (n *Node) maybeSnapshot() error {
	applied := n.state.AppliedIndex
	if applied < n.snapIndex+n.cfg.SnapshotEvery {
		return nil
	}
	data, err := n.state.MarshalSnapshot()
	if err != nil {
		return err
	}
	snap, err := n.storage.CreateSnapshot(applied, &n.confState, data)
	if err != nil {
		return fmt.Errorf("ctrl: create snapshot: %w", err)
	}
	last, _ := n.storage.LastIndex()
	var after []raftpb.Entry
	if last > applied {
		if after, err = n.storage.Entries(applied+1, last+1, math.MaxUint64); err != nil {
			return fmt.Errorf("ctrl: entries after snapshot: %w", err)
		}
	}
	hs, _, _ := n.storage.InitialState()
	if err := n.wal.SaveSnapshot(snap, hs, after); err != nil {
		return err
	}
	n.snapIndex = applied
	if keep := n.cfg.SnapshotEvery / 2; applied > keep {
		if first, _ := n.storage.FirstIndex(); applied-keep > first {
			if err := n.storage.Compact(applied - keep); err != nil {
				return fmt.Errorf("ctrl: compact: %w", err)
			}
		}
	}
	return nil
}
