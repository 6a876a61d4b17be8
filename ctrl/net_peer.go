package ctrl

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// The raft transport: one sender goroutine per peer owns a persistent outbound connection, fed by a bounded
// queue. Raft tolerates loss, so a full queue or a dead link drops messages (counted) and tells raft, which
// retries at its own pace.

const (
	peerQueue   = 4096 // messages queued per peer before dropping
	dialTimeout = time.Second
	redialAfter = 50 * time.Millisecond // plus up to as much jitter, so peers do not redial in lockstep
	sendBatch   = 256                   // messages written per writev at most
)

type outMsg struct {
	frame []byte
	snap  bool // a MsgSnap: report the outcome with ReportSnapshot
}

type peer struct {
	t       *Net
	id      uint64
	addr    string
	q       chan outMsg
	conn    net.Conn      // owned by run
	ended   chan struct{} // closed when conn's reader saw the peer close it
	retryAt time.Time
}

type netTransport struct{ t *Net }

// Send implements Transport. It is called with the Node's lock held: it only marshals and queues, never blocks,
// and reports snapshot failures from another goroutine.
func (tr netTransport) Send(msgs []raftpb.Message) {
	t := tr.t
	if t.closing() {
		return
	}
	for i := range msgs {
		m := &msgs[i]
		p := t.peers[m.To]
		if p == nil {
			t.dropped.Add(1)
			t.log.Debug("ctrl: raft message for a controller with no address dropped", "to", m.To, "type", m.Type.String())
			continue
		}
		snap := m.Type == raftpb.MsgSnap
		f, err := raftFrame(m)
		if err != nil {
			t.log.Error("ctrl: raft message not sent", "err", err)
			p.failed([]outMsg{{snap: snap}}, false, true)
			continue
		}
		select {
		case p.q <- outMsg{frame: f, snap: snap}:
		default:
			t.dropped.Add(1)
			p.failed([]outMsg{{snap: snap}}, false, true)
		}
	}
}

func (p *peer) run() {
	defer p.t.wg.Done()
	defer p.closeConn()
	batch := make([]outMsg, 0, sendBatch)
	frames := make([][]byte, 0, sendBatch)
	for {
		select {
		case m := <-p.q:
			batch = append(batch[:0], m)
		case <-p.t.done:
			return
		}
		for more := true; more && len(batch) < sendBatch; {
			select {
			case m := <-p.q:
				batch = append(batch, m)
			default:
				more = false
			}
		}
		if p.conn != nil && isClosed(p.ended) {
			// The peer closed it (it restarted, say) while we had nothing to send, as a follower has for
			// every voter but the leader: writing would drop this batch (its first vote request, costing an
			// election timeout). Dial first.
			p.closeConn()
		}
		if p.conn == nil && !p.dial() {
			p.t.dropped.Add(uint64(len(batch)))
			p.failed(batch, true, false)
			continue
		}
		frames = frames[:0]
		for _, m := range batch {
			frames = append(frames, m.frame)
		}
		bufs := net.Buffers(frames) // WriteTo consumes bufs, not frames
		_ = p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := bufs.WriteTo(p.conn); err != nil {
			if !p.t.closing() {
				p.t.log.Debug("ctrl: raft send failed", "peer", p.id, "addr", p.addr, "err", err)
			}
			p.closeConn()
			p.retryAt = time.Now().Add(backoff())
			p.t.dropped.Add(uint64(len(batch)))
			p.failed(batch, true, false)
			continue
		}
		if n := p.t.node.Load(); n != nil {
			for _, m := range batch {
				if m.snap {
					n.ReportSnapshot(p.id, true)
				}
			}
		}
		clear(batch) // do not pin sent frames until the next batch overwrites them
		clear(frames)
	}
}

// dial connects unless a recent attempt failed; it reports whether there is a connection now.
func (p *peer) dial() bool {
	if time.Now().Before(p.retryAt) {
		return false
	}
	ctx, cancel := context.WithTimeout(p.t.ctx, dialTimeout)
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.addr)
	cancel()
	if err != nil {
		p.retryAt = time.Now().Add(backoff())
		p.t.log.Debug("ctrl: raft peer dial failed", "peer", p.id, "addr", p.addr, "err", err)
		if n := p.t.node.Load(); n != nil && errors.Is(err, syscall.ECONNREFUSED) {
			n.voterRefused(p.id) // nothing listens there: that process is gone (failover.go)
		}
		return false
	}
	if n := p.t.node.Load(); n != nil {
		n.voterReached(p.id)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if !p.t.track(c) {
		return false
	}
	ended := make(chan struct{})
	p.conn, p.ended = c, ended
	// The peer never writes on this connection; reading notices when it closes it, so the next send dials anew
	// instead of writing into a closed socket.
	p.t.wg.Add(1)
	go func() {
		defer p.t.wg.Done()
		defer close(ended)
		_, err := io.Copy(io.Discard, c)
		if err != nil && !errors.Is(err, net.ErrClosed) && !p.t.closing() {
			p.t.log.Debug("ctrl: raft peer connection ended", "peer", p.id, "err", err)
		}
		_ = c.Close()
	}()
	return true
}

func (p *peer) closeConn() {
	if p.conn != nil {
		p.t.untrack(p.conn)
		p.conn = nil
	}
}

// failed tells the Node about messages that did not go out: the peer is unreachable (a dial or write failed)
// and any snapshot among them failed. async: the caller holds the Node's lock (Send), so report from elsewhere.
func (p *peer) failed(batch []outMsg, unreachable, async bool) {
	n := p.t.node.Load()
	if n == nil {
		return
	}
	snaps := 0
	for _, m := range batch {
		if m.snap {
			snaps++
		}
	}
	if snaps == 0 && !unreachable {
		return
	}
	report := func() {
		if unreachable {
			n.ReportUnreachable(p.id)
		}
		for range snaps {
			n.ReportSnapshot(p.id, false)
		}
	}
	if async {
		go report()
	} else {
		report()
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func backoff() time.Duration {
	return redialAfter + rand.N(redialAfter)
}
