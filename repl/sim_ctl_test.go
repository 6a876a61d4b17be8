package repl

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/sluicemq/sluice/segstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

// simCtl is the fake controller: it elects leaders from the ISR in replica
// order (never unclean), bumps the epochs, drops fenced brokers from the ISR
// (not the last member, as KRaft) and validates AlterPartition.
type simCtl struct {
	replicas    []int32
	leader      int32
	epoch       int32
	partEpoch   int32
	isr         []int32
	fenced      map[int32]bool
	electionsAt []int32
}

func (c *simCtl) state() PartitionState {
	return PartitionState{Leader: c.leader, LeaderEpoch: c.epoch, PartitionEpoch: c.partEpoch,
		Replicas: slices.Clone(c.replicas), ISR: slices.Clone(c.isr)}
}

func (c *simCtl) elect() {
	c.leader = -1
	for _, id := range c.replicas {
		if slices.Contains(c.isr, id) && !c.fenced[id] {
			c.leader = id
			break
		}
	}
	c.epoch++
	c.partEpoch++
	c.electionsAt = append(c.electionsAt, c.leader)
}

func (c *simCtl) fence(id int32) {
	c.fenced[id] = true
	if slices.Contains(c.isr, id) && len(c.isr) > 1 {
		c.isr = without(c.isr, []int32{id})
		c.partEpoch++
	}
	if c.leader == id {
		c.elect()
	}
}

func (c *simCtl) unfence(id int32) {
	c.fenced[id] = false
	if c.leader < 0 {
		c.elect()
	}
}

// alter is AlterPartition: the leader's epoch and partition epoch must be
// current, and the new ISR must hold the leader and no fenced broker.
func (c *simCtl) alter(r AlterRequest) AlterResponse {
	resp := AlterResponse{LeaderEpoch: r.LeaderEpoch}
	switch {
	case r.Leader != c.leader || r.LeaderEpoch != c.epoch:
		resp.Err = kerr.FencedLeaderEpoch
	case r.PartitionEpoch != c.partEpoch:
		resp.Err = kerr.InvalidUpdateVersion
	case !slices.Contains(r.ISR, r.Leader) || slices.ContainsFunc(r.ISR, func(id int32) bool { return c.fenced[id] }):
		resp.Err = kerr.IneligibleReplica
	default:
		c.isr = slices.Clone(r.ISR)
		c.partEpoch++
		resp.PartitionEpoch, resp.ISR = c.partEpoch, slices.Clone(c.isr)
	}
	return resp
}

// alterFrom is node n's AlterPartition sender: a message to the controller
// whose answer is a message back to n (the metadata goes out at once).
func (s *sim) alterFrom(n *simNode) func(AlterRequest) {
	return func(r AlterRequest) {
		ldr := n.leader // nil while NewLeader runs: then the sender is the one being built
		timeout := func() {
			if n.leader != nil && (ldr == nil || n.leader == ldr) {
				n.leader.AlterPartitionDone(AlterResponse{LeaderEpoch: r.LeaderEpoch, Err: kerr.RequestTimedOut})
			}
		}
		s.sendOr(-1, fmt.Sprintf("AlterPartition %d→ctl %v", n.id, r.ISR), func() {
			resp := s.ctl.alter(r)
			if resp.Err == nil {
				s.pushMetadata()
			}
			s.sendOr(n.id, fmt.Sprintf("AlterPartition answer →%d %v", n.id, resp.Err), func() {
				if n.leader != nil {
					n.leader.AlterPartitionDone(resp)
				}
			}, timeout)
		}, timeout)
	}
}

// fetch makes follower id send its next request (a fetch or an
// OffsetForLeaderEpoch query) if it has none in flight; false if it cannot.
func (s *sim) fetch(id int32) bool {
	n := s.node(id)
	if !n.up || n.fol == nil || n.inflight {
		return false
	}
	f := n.fol
	req := f.Next()
	n.inflight = true
	timeout := func() {
		if n.fol == f {
			n.inflight = false
		}
	}
	s.sendOr(req.Leader, fmt.Sprintf("%d→%d %+v", id, req.Leader, req), func() {
		ln := s.node(req.Leader)
		if req.EpochQuery {
			ans, err := EpochEnd{-1, -1}, error(kerr.NotLeaderForPartition)
			if ln.leader != nil {
				ans, err = ln.leader.EndOffsetForEpoch(req.LeaderEpoch, req.Epoch)
			}
			s.sendOr(id, fmt.Sprintf("epoch answer %d→%d %+v %v", req.Leader, id, ans, err), func() {
				if n.fol == f {
					n.inflight = false
					s.followerErr(id, f.HandleEpochEnd(req, ans, err))
				}
			}, timeout)
			return
		}
		resp := FetchResponse{Err: kerr.NotLeaderForPartition}
		if ln.leader != nil {
			d := ln.leader.HandleFetch(FetchRequest{ReplicaID: id, CurrentLeaderEpoch: req.LeaderEpoch,
				FetchOffset: req.FetchOffset, LastFetchedEpoch: req.LastFetchedEpoch})
			resp = FetchResponse{Err: d.Err, HighWatermark: d.HighWatermark, LogStartOffset: d.LogStartOffset, Diverging: d.Diverging}
			if d.Err == nil && d.Diverging == nil {
				recs, err := ln.log.ReadCopy(req.FetchOffset, 1<<10, -1, nil)
				if err != nil {
					s.t.Fatalf("leader %d read at %d: %v", ln.id, req.FetchOffset, err)
				}
				resp.Records = recs
			}
		}
		s.sendOr(id, fmt.Sprintf("fetch answer %d→%d div=%v hw=%d %dB %v", req.Leader, id, resp.Diverging, resp.HighWatermark, len(resp.Records), resp.Err), func() {
			if n.fol == f {
				n.inflight = false
				s.followerErr(id, f.HandleFetch(req, resp))
			}
		}, timeout)
	}, timeout)
	return true
}

// followerErr fails the test on errors a follower must never see; protocol
// errors (fenced epochs, a leader that moved) are normal in a simulation.
func (s *sim) followerErr(id int32, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, segstore.ErrStorage) || errors.Is(err, segstore.ErrInvalidRecord) ||
		errors.Is(err, segstore.ErrCorruptBatch) || errors.Is(err, kerr.OffsetOutOfRange) {
		s.t.Fatalf("BUG: follower %d: %v", id, err)
	}
	s.tracef("follower %d: %v", id, err)
}

// batches reads node n's whole log as batches.
func (s *sim) batches(n *simNode) map[int64][]byte {
	s.t.Helper()
	out := map[int64][]byte{}
	o := n.log.Offsets()
	for off := o.Start; off < o.End; {
		buf, err := n.log.ReadCopy(off, 1<<20, -1, nil)
		if err != nil || len(buf) == 0 {
			s.t.Fatalf("node %d read at %d (end %d): %v", n.id, off, o.End, err)
		}
		for len(buf) >= 61 {
			size := int(int32(uint32(buf[8])<<24|uint32(buf[9])<<16|uint32(buf[10])<<8|uint32(buf[11]))) + 12
			base := int64(0)
			for _, c := range buf[:8] {
				base = base<<8 | int64(c)
			}
			out[base] = buf[:size]
			off = base + 1 // one record per batch in the simulation
			buf = buf[size:]
		}
	}
	return out
}

// check verifies the invariants: every acks=all record is at its offset on
// the leader and on every live ISR member, and every live replica agrees
// with the leader byte for byte below its own HW.
func (s *sim) check() {
	s.t.Helper()
	if s.ctl.leader < 0 || !s.node(s.ctl.leader).up || s.node(s.ctl.leader).leader == nil {
		return
	}
	ln := s.node(s.ctl.leader)
	lb := s.batches(ln)
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		nb := lb
		if n != ln {
			nb = s.batches(n)
		}
		if n == ln || slices.Contains(s.ctl.isr, n.id) {
			for _, a := range s.acked {
				if !bytes.Equal(nb[a.offset], a.batch) {
					s.t.Fatalf("BUG: acknowledged record at %d missing on node %d (leader %d, ISR %v)", a.offset, n.id, ln.id, s.ctl.isr)
				}
			}
		}
		bound := min(n.hw(), ln.log.Offsets().End)
		for _, m := range []map[int64][]byte{nb, lb} {
			for off := range m {
				if off < bound && !bytes.Equal(nb[off], lb[off]) {
					s.t.Fatalf("BUG: node %d differs from leader %d at %d below its HW %d", n.id, ln.id, off, bound)
				}
			}
		}
	}
}
