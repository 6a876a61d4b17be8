package ctrl

import "slices"

// What a controller learns about the other voters that makes a failover fast, kept outside raft and outside the
// active controller's sessions (it is gathered before this controller is active, and it outlives leadership):
//
//   - the raft leader as of the last Ready, with a channel closed when it changes, so a Client in the same process
//     abandons calls stuck on a controller that is no longer active (a SIGSTOPped one answers nothing, and a call
//     would otherwise hang until its timeout) and heartbeats the new one at once;
//   - which voters' controller listeners refused a connection (ECONNREFUSED): no process listened on that port
//     then. In combined mode a voter and the broker of the same node id are one process (node enforces it), so a
//     broker registered before the refusal is dead. A stopped (SIGSTOP) process still completes TCP handshakes
//     in its kernel, and a partitioned host times out rather than refuses, so neither looks refused; raft's view
//     of a silent peer proves nothing and is not used.
type failoverView struct {
	lead   uint64        // raft leader (0: none known) as of the last Ready
	leadCh chan struct{} // closed when lead changes; nil until someone waits
	// refused: voter raft id -> this controller's applied index when that voter's controller listener last
	// refused a connection. A registration record at or below that index was applied before the refusal, so its
	// process had started before it and had exited (or closed its listener, which it does only on the way out).
	refused map[uint64]uint64
}

// leaderMoved returns a channel closed when the raft leader this controller knows changes (including to none), nil
// once the Node has stopped (it learns nothing more). Safe for concurrent use.
func (n *Node) leaderMoved() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return nil
	}
	if n.fo.leadCh == nil {
		n.fo.leadCh = make(chan struct{})
	}
	return n.fo.leadCh
}

// leaderSeen runs under mu after each Ready carrying a soft state: it wakes leaderMoved's waiters when the leader
// changed.
func (n *Node) leaderSeen(lead uint64) {
	if lead == n.fo.lead {
		return
	}
	n.fo.lead = lead
	if n.fo.leadCh != nil {
		close(n.fo.leadCh)
		n.fo.leadCh = nil
	}
}

// voterRefused records that voter id's controller listener refused a connection just now. Called by whatever dials
// it (the raft transport, the Client); safe for concurrent use, never with the caller's locks held.
func (n *Node) voterRefused(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil || id == n.cfg.ID {
		return
	}
	if n.fo.refused == nil {
		n.fo.refused = map[uint64]uint64{}
	}
	n.fo.refused[id] = n.state.AppliedIndex
}

// voterReached records that a connection to voter id's controller listener was made: whatever refused it before
// is over (a restarted process registers a new broker epoch anyway). Safe for concurrent use.
func (n *Node) voterReached(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.fo.refused, id)
}

// provenDead reports whether broker b's process is known to have exited: b runs in a voter's process (its node id
// is a voter's), that voter's controller listener refused a connection after b's registration was applied here,
// and b has not heartbeated (nor registered) to this controller since it became active — a broker that did has a
// connection to it whose closing (BrokerDisconnected) is the better signal, and a live one must never be fenced on
// a stale refusal. Runs under mu on the active controller.
func (n *Node) provenDead(b *Broker) bool {
	if n.sess.heard[b.ID] {
		return false
	}
	id := RaftID(b.ID)
	at, ok := n.fo.refused[id]
	return ok && b.Epoch > 0 && uint64(b.Epoch) <= at && n.isVoter(id)
}

// isVoter reports whether raft id is a voter of the current configuration. Runs under mu.
func (n *Node) isVoter(id uint64) bool {
	return slices.Contains(n.confState.Voters, id)
}
