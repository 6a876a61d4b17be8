package ctrl

import (
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Broker sessions, kept by the active controller in memory only, as Kafka's BrokerHeartbeatManager: a heartbeat
// refreshes a broker's session; a broker silent for longer than the session timeout is fenced (a FenceBroker record
// with its partition changes); a fenced broker whose metadata has caught up to its own registration is unfenced.
// A controller that becomes active starts every registered broker with a grace instead of a full session
// (startSessions): Config.VoterSessionGrace for a broker running in a voter's process, which learns the new leader
// from its own raft and heartbeats it within about an interval; Config.SessionGrace for the others, which find it
// only once a call to the old one times out. So a failover neither fences brokers that were heartbeating to the
// previous controller nor waits a whole session for one that died with it; one whose death is proven (provenDead:
// its voter's listener refused a connection) is fenced at once. A broker whose heartbeat connection closes is
// fenced at once (BrokerDisconnected); one that asked for a controlled shutdown is fenced and stays fenced
// whatever it still sends.

type session struct {
	last     map[int32]time.Time
	heard    map[int32]bool // heartbeated or registered to this controller since it became active
	inflight map[int32]bool // a fence/unfence/register proposal for this broker is not applied yet
	// gone: the broker's connection closed (at this epoch) while a proposal for it was in flight; fence it once
	// that proposal lands, unless a heartbeat shows it alive first.
	gone map[int32]int64
	// shutdown: the broker asked for a controlled shutdown at this epoch; heartbeats do not unfence it.
	shutdown map[int32]int64
	// waiting: a controlled shutdown waiting for the broker's in-flight proposal to land.
	waiting map[int32]shutdownWait
}

type shutdownWait struct {
	epoch   int64
	done    func(error)
	attempt int
}

// startSessions runs under mu when this controller becomes active: every registered broker's session expires
// after its grace (graceFor) unless a heartbeat renews it.
func (n *Node) startSessions() {
	s := &n.sess
	s.last, s.heard, s.inflight = map[int32]time.Time{}, map[int32]bool{}, map[int32]bool{}
	s.gone, s.shutdown, s.waiting = map[int32]int64{}, map[int32]int64{}, map[int32]shutdownWait{}
	now := n.cfg.Clock.Now()
	for id := range n.state.Brokers {
		// A session that started SessionTimeout-grace ago expires after grace.
		s.last[id] = now.Add(n.graceFor(id) - n.cfg.SessionTimeout)
	}
}

// graceFor is how long broker id has to heartbeat a newly active controller: Config.VoterSessionGrace if it runs
// in a voter's process (its node id is a voter's; its Client follows that voter's raft), else
// Config.SessionGrace, each falling back to the next longer one (SessionGrace, then SessionTimeout) when unset.
// Runs under mu.
func (n *Node) graceFor(id int32) time.Duration {
	grace := n.cfg.SessionGrace
	if n.cfg.VoterSessionGrace > 0 && n.isVoter(RaftID(id)) {
		grace = n.cfg.VoterSessionGrace
	}
	if grace <= 0 || grace > n.cfg.SessionTimeout {
		grace = n.cfg.SessionTimeout
	}
	return grace
}

// HeartbeatRequest is a broker's heartbeat (Kafka's BrokerHeartbeat).
type HeartbeatRequest struct {
	BrokerID    int32
	BrokerEpoch int64
	// MetadataOffset is the last metadata log index the broker has applied.
	MetadataOffset uint64
	// WantFence: the broker does not want to be unfenced (e.g. still loading).
	WantFence bool
}

// HeartbeatReply answers a heartbeat.
type HeartbeatReply struct {
	Fenced bool // as of the applied state; an unfence proposed by this heartbeat shows on a later one
}

// Heartbeat records a broker heartbeat on the active controller. Errors: ErrNotLeader (answer NOT_CONTROLLER),
// and errors wrapping BROKER_ID_NOT_REGISTERED or STALE_BROKER_EPOCH. Safe for concurrent use.
func (n *Node) Heartbeat(req HeartbeatRequest) (HeartbeatReply, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return HeartbeatReply{}, n.err
	}
	if !n.leading {
		return HeartbeatReply{}, ErrNotLeader
	}
	b := n.state.Brokers[req.BrokerID]
	if b == nil {
		return HeartbeatReply{}, fmt.Errorf("%w: broker %d", kerr.BrokerIDNotRegistered, req.BrokerID)
	}
	if b.Epoch != req.BrokerEpoch {
		return HeartbeatReply{}, fmt.Errorf("%w: broker %d epoch %d, current %d", kerr.StaleBrokerEpoch, req.BrokerID, req.BrokerEpoch, b.Epoch)
	}
	n.sess.last[b.ID] = n.cfg.Clock.Now()
	n.sess.heard[b.ID] = true
	delete(n.sess.gone, b.ID) // alive after all (e.g. reconnected on another connection)
	if e, down := n.sess.shutdown[b.ID]; down && e == b.Epoch {
		return HeartbeatReply{Fenced: b.Fenced}, nil
	}
	if b.Fenced && !req.WantFence && req.MetadataOffset >= uint64(b.Epoch) && !n.sess.inflight[b.ID] {
		recs := []Record{{Type: TypeUnfenceBroker, UnfenceBroker: &UnfenceBroker{ID: b.ID, Epoch: b.Epoch, TimeMs: n.nowMs()}}}
		recs = append(recs, changeRecords(UnfenceChanges(n.state, b.ID))...)
		n.proposeForBroker(b.ID, recs, nil)
	}
	return HeartbeatReply{Fenced: b.Fenced}, nil
}

func (n *Node) nowMs() int64 { return n.cfg.Clock.Now().UnixMilli() }

// checkSessions fences every unfenced broker whose session expired or whose process is proven dead (provenDead).
// Runs under mu on the active controller.
func (n *Node) checkSessions() {
	now := n.cfg.Clock.Now()
	ids := make([]int32, 0, len(n.state.Brokers))
	for id := range n.state.Brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		b := n.state.Brokers[id]
		last, ok := n.sess.last[id]
		if !ok {
			n.sess.last[id] = now // registered through an entry this controller did not propose
			continue
		}
		if b.Fenced || n.sess.inflight[id] || (now.Sub(last) <= n.cfg.SessionTimeout && !n.provenDead(b)) {
			continue
		}
		n.proposeForBroker(id, n.fenceRecords(b), nil)
	}
}

// fenceRecords moves b's leaderships and ISR memberships away, then fences it, as one atomic batch.
func (n *Node) fenceRecords(b *Broker) []Record {
	recs := changeRecords(FenceChanges(n.state, b.ID))
	return append(recs, Record{Type: TypeFenceBroker, FenceBroker: &FenceBroker{ID: b.ID, Epoch: b.Epoch, TimeMs: n.nowMs()}})
}

func changeRecords(cs []ChangePartition) []Record {
	out := make([]Record, len(cs))
	for i := range cs {
		out[i] = Record{Type: TypeChangePartition, ChangePartition: &cs[i]}
	}
	return out
}

func batch(recs []Record) Record {
	if len(recs) == 1 {
		return recs[0]
	}
	return Record{Type: TypeBatch, Batch: recs}
}

// proposeForBroker proposes recs as one batch and marks the broker busy until it is applied, so ticks and
// heartbeats do not propose the same change twice. Runs under mu.
func (n *Node) proposeForBroker(id int32, recs []Record, done func(uint64, error)) error {
	b, err := EncodeRecord(batch(recs))
	if err == nil {
		err = n.proposeLocked(b, func(idx uint64, err error) {
			n.mu.Lock()
			if n.sess.inflight != nil {
				delete(n.sess.inflight, id)
				n.brokerIdle(id)
			}
			n.mu.Unlock()
			if done != nil {
				done(idx, err)
			}
		})
	}
	if err == nil {
		n.sess.inflight[id] = true
	}
	return err
}

// RegisterBroker registers a broker on the active controller. A broker id already registered and unfenced (a
// restart faster than its session) is fenced in the same batch, its leaderships moved first. done receives the
// new broker epoch (the record's index). The broker starts fenced and is unfenced by a heartbeat once its metadata
// offset reaches that epoch. Errors: ErrNotLeader, or the record's validation error (through done).
// Safe for concurrent use.
func (n *Node) RegisterBroker(r RegisterBroker, done func(epoch int64, err error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return n.err
	}
	if !n.leading {
		return ErrNotLeader
	}
	r.TimeMs = n.nowMs()
	var recs []Record
	if old := n.state.Brokers[r.ID]; old != nil && !old.Fenced {
		recs = changeRecords(FenceChanges(n.state, r.ID))
	}
	recs = append(recs, Record{Type: TypeRegisterBroker, RegisterBroker: &r})
	n.sess.last[r.ID] = n.cfg.Clock.Now()
	n.sess.heard[r.ID] = true
	return n.proposeForBroker(r.ID, recs, func(idx uint64, err error) {
		if done != nil {
			done(int64(idx), err)
		}
	})
}

// BrokerDisconnected tells the active controller that the connection carrying broker id's heartbeats at epoch
// closed: a crashed broker's sockets are closed by its kernel, so this fences it in milliseconds instead of a
// session timeout. If the broker is registered at exactly epoch and unfenced it is fenced now (fenceRecords); if a
// proposal for it is in flight, once that lands (unless a heartbeat shows it alive first). Otherwise, and on a
// controller that is not active, nothing. Safe for concurrent use.
func (n *Node) BrokerDisconnected(id int32, epoch int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil || !n.leading {
		return
	}
	b := n.state.Brokers[id]
	if b == nil || b.Epoch != epoch {
		return
	}
	if n.sess.inflight[id] {
		n.sess.gone[id] = epoch
		return
	}
	if !b.Fenced {
		_ = n.proposeForBroker(id, n.fenceRecords(b), nil)
	}
}

// brokerIdle runs under mu when the proposal in flight for broker id has landed: it carries out what waited for
// that, a controlled shutdown or a disconnect's fence.
func (n *Node) brokerIdle(id int32) {
	if !n.leading || n.err != nil {
		return
	}
	if w, ok := n.sess.waiting[id]; ok {
		delete(n.sess.waiting, id)
		delete(n.sess.gone, id)
		if err := n.controlledShutdownLocked(id, w.epoch, w.done, w.attempt); err != nil {
			n.ready = append(n.ready, func() { w.done(err) })
			n.signal()
		}
		return
	}
	if e, ok := n.sess.gone[id]; ok {
		delete(n.sess.gone, id)
		if b := n.state.Brokers[id]; b != nil && b.Epoch == e && !b.Fenced {
			_ = n.proposeForBroker(id, n.fenceRecords(b), nil)
		}
	}
}
