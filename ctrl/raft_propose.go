package ctrl

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Propose submits a record for the log. It fails at once with ErrNotLeader unless this controller leads, or with
// the sticky storage error. Otherwise done is called exactly once, without the Node's lock, on a goroutine running
// Process or Tick: (index, nil) once the record was committed and applied at index; (index, err wrapping
// ErrInvalidRecord) when it was committed but rejected by Apply (the state is unchanged); (0, ErrLeadershipLost)
// if this controller stopped leading first; (0, ErrStopped) on Stop. Safe for concurrent use.
func (n *Node) Propose(r Record, done func(index uint64, err error)) error {
	b, err := EncodeRecord(r)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proposeLocked(b, done)
}

func (n *Node) proposeLocked(rec []byte, done func(uint64, error)) error {
	if n.err != nil {
		return n.err
	}
	if !n.leading {
		return ErrNotLeader
	}
	n.seq++
	data := make([]byte, entryHeader, entryHeader+len(rec))
	binary.BigEndian.PutUint64(data, n.cfg.ID)
	binary.BigEndian.PutUint64(data[8:], n.seq)
	data = append(data, rec...)
	if err := n.rn.Propose(data); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			return ErrNotLeader // e.g. a leadership transfer is under way
		}
		return err
	}
	if done == nil {
		done = func(uint64, error) {}
	}
	n.pending[n.seq] = done
	n.signal()
	return nil
}

// leadershipChanged runs under mu when raft's role changes.
func (n *Node) leadershipChanged(leading bool) {
	if leading == n.leading {
		return
	}
	n.leading = leading
	if leading {
		n.startSessions()
		return
	}
	n.failPending(ErrLeadershipLost)
	n.sess = session{}
}

func (n *Node) failPending(err error) {
	for seq, done := range n.pending {
		delete(n.pending, seq)
		n.ready = append(n.ready, func() { done(0, err) })
	}
	for id, w := range n.sess.waiting {
		delete(n.sess.waiting, id)
		n.ready = append(n.ready, func() { w.done(err) })
	}
}

func (n *Node) stopLocked(err error) {
	if n.err == nil {
		n.err = err
	}
	n.failPending(err)
	n.leading = false
	n.appliedMoved() // waiters see the error rather than wait out their timeout
}

// Stop stops the controller: pending proposals fail with ErrStopped, the log is closed, later calls fail.
// Safe for concurrent use.
func (n *Node) Stop() {
	n.mu.Lock()
	n.stopLocked(ErrStopped)
	_ = n.wal.Close()
	cbs := n.takeCallbacks()
	n.mu.Unlock()
	for _, cb := range cbs {
		cb()
	}
}

// Tick advances raft's logical clock one tick and, on the active controller, checks broker sessions (proposing
// fences for expired ones). Safe for concurrent use; fence callbacks run on the caller's goroutine.
func (n *Node) Tick() {
	n.mu.Lock()
	if n.err == nil {
		n.rn.Tick()
		if n.leading {
			n.checkSessions()
		}
		n.signal()
	}
	cbs := n.takeCallbacks()
	n.mu.Unlock()
	for _, cb := range cbs {
		cb()
	}
}

// Step delivers a message from another controller. Safe for concurrent use.
func (n *Node) Step(m raftpb.Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return n.err
	}
	n.signal()
	return n.rn.Step(m)
}

// ReportUnreachable tells raft a message to id could not be delivered. Safe for concurrent use.
func (n *Node) ReportUnreachable(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err == nil {
		n.rn.ReportUnreachable(id)
	}
}

// ReportSnapshot tells raft whether a snapshot sent to id arrived. Safe for concurrent use.
func (n *Node) ReportSnapshot(id uint64, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err == nil {
		st := raft.SnapshotFinish
		if !ok {
			st = raft.SnapshotFailure
		}
		n.rn.ReportSnapshot(id, st)
	}
}

// Read calls fn with the applied state under the Node's lock: fn must not keep s nor call the Node. For a copy to
// keep, use fn to Clone. Safe for concurrent use.
func (n *Node) Read(fn func(s *State)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fn(n.state)
}

// LeaderID returns the raft id of the raft leader as this controller knows it, 0 if unknown or stopped.
// Safe for concurrent use.
func (n *Node) LeaderID() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return 0
	}
	return n.rn.BasicStatus().Lead
}

// Status reports the raft leader (0 if unknown), the term, and whether this controller is active.
// Safe for concurrent use.
func (n *Node) Status() (leader, term uint64, active bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.rn.BasicStatus()
	return st.Lead, st.Term, n.leading
}

func (n *Node) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run drives the Node in production: a Tick every tick interval and Process whenever there is work, until ctx ends
// or storage fails. Run it on one goroutine; tests call Tick and Process themselves instead.
func (n *Node) Run(ctx context.Context, tick time.Duration) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		for {
			did, err := n.Process()
			if err != nil {
				return err
			}
			if !did {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			n.Tick()
		case <-n.wake:
		}
	}
}
