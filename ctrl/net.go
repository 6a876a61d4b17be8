package ctrl

// The controller listener: one TCP port per controller voter carries both the raft transport between voters and
// the RPCs brokers send to the active controller (net_rpc.go, net_ops.go; the broker side is Client).
//
// # Wire format
//
// A connection carries frames in both directions:
//
//	u32 big-endian length of what follows (kind byte + body), at most MaxFrameSize (64 MiB)
//	u8  kind
//	body
//
// Kinds:
//
//	1 raft message  body = raftpb.Message.Marshal(); one-way, from a voter's outbound connection to its peer
//	2 RPC request   body = u64 big-endian correlation id, then JSON {"method": string, "body": <method's JSON>}
//	3 RPC response  body = u64 correlation id of the request, then JSON {"code": int16 Kafka error code, "msg":
//	                string, "leader": raft id of the active controller as a hint on NOT_CONTROLLER (0 unknown),
//	                "body": <result JSON>}
//
// Responses may come in any order (long polls); the correlation id matches them up. Each voter dials every other
// voter once and sends only kind 1 on that connection; brokers (Client) dial and send only kind 2. A frame that is
// oversized, truncated, of an unknown or unexpected kind, or whose raft message or request envelope does not
// decode closes that connection with one log line; nothing else is affected. A request whose method is unknown or
// whose method body does not decode is answered (INVALID_REQUEST) and the connection stays.
//
// # Broker liveness
//
// A connection on which a broker registered or heartbeated carries that broker (id and epoch). When the last open
// connection carrying it closes (EOF, reset: a kill -9'd broker's kernel closes its sockets), the active controller
// fences it at once (Node.BrokerDisconnected) instead of after a session timeout. A ControlledShutdown request
// drops the mark first: that broker leaves on purpose. Closing the Net itself reports nobody.
//
// # Concurrency
//
// Net's methods are safe for concurrent use. Transport().Send never blocks: it marshals (the messages from raft's
// Ready may share memory raft later reuses) and queues per peer, dropping when a queue is full (raft retries).
// Per peer one goroutine owns the outbound connection. Per inbound connection one goroutine reads and one writes;
// answers produced by Node callbacks are queued to the writer, so a slow reader never stalls the Node.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// NetConfig configures a controller listener.
type NetConfig struct {
	Listen string            // host:port to listen on (port 0 picks one; Net.Addr reports it)
	Peers  map[uint64]string // raft id -> host:port of every other voter
	Logger *slog.Logger      // nil: slog.Default()
}

// Net is a controller voter's listener: the raft transport to and from its peers and the RPC server brokers
// call. Only controller voters create one. Safe for concurrent use.
type Net struct {
	log   *slog.Logger
	ln    net.Listener
	node  atomic.Pointer[Node]
	peers map[uint64]*peer // fixed after ListenNet
	done  chan struct{}    // closed by Close
	stop  context.CancelFunc
	ctx   context.Context // ends with Close; cuts dials short
	once  sync.Once
	wg    sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{} // every open connection, in and out, so Close can end them
	shut     bool
	carriers map[brokerAt]int // open connections carrying each broker's heartbeats (see srvConn.mark)

	dropped atomic.Uint64 // raft messages dropped (queue full, unknown peer, dead link); raft retries
}

// ListenNet listens on cfg.Listen and starts one sender per peer. Give Transport() to Config.Transport, build the
// Node, then Attach it.
func ListenNet(cfg NetConfig) (*Net, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("ctrl: controller listener: %w", err)
	}
	t := &Net{log: cfg.Logger, ln: ln, peers: map[uint64]*peer{}, done: make(chan struct{}), conns: map[net.Conn]struct{}{},
		carriers: map[brokerAt]int{}}
	t.ctx, t.stop = context.WithCancel(context.Background())
	if t.log == nil {
		t.log = slog.Default()
	}
	for id, addr := range cfg.Peers {
		p := &peer{t: t, id: id, addr: addr, q: make(chan outMsg, peerQueue)}
		t.peers[id] = p
		t.wg.Add(1)
		go p.run()
	}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

// Addr returns the address the listener is bound to. Safe for concurrent use.
func (t *Net) Addr() net.Addr { return t.ln.Addr() }

// Transport returns the raft Transport sending through this listener's peers. Safe for concurrent use.
func (t *Net) Transport() Transport { return netTransport{t} }

// Attach makes n receive the inbound raft messages and serve the RPCs. Before it, raft messages are dropped and
// RPCs answered NOT_CONTROLLER. Safe for concurrent use.
func (t *Net) Attach(n *Node) { t.node.Store(n) }

// Close stops listening, ends every connection and sender, and waits for them. Connections closed this way do
// not fence their brokers (the controller is going away, not the broker). Idempotent; safe for concurrent use.
func (t *Net) Close() error {
	var err error
	t.once.Do(func() {
		err = t.ln.Close()
		t.mu.Lock()
		t.shut = true
		for c := range t.conns {
			_ = c.Close()
		}
		t.mu.Unlock()
		close(t.done)
		t.stop()
		t.wg.Wait()
	})
	return err
}

// track registers an open connection so Close can end it; it reports false (and closes c) after Close.
func (t *Net) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shut {
		_ = c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Net) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	_ = c.Close()
}

func (t *Net) closing() bool {
	select {
	case <-t.done:
		return true
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.shut
}

func (t *Net) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.closing() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// E.g. EMFILE: back off instead of spinning, as net/http does.
			t.log.Warn("ctrl: controller listener accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if !t.track(c) {
			return
		}
		t.wg.Add(1)
		go t.serve(c)
	}
}

// serve reads one inbound connection until it ends or sends something bad.
func (t *Net) serve(c net.Conn) {
	defer t.wg.Done()
	sc := newSrvConn(t, c)
	t.wg.Add(1)
	go sc.writeLoop()
	err := sc.readLoop()
	if err != nil && !errors.Is(err, io.EOF) && !t.closing() && !errors.Is(err, net.ErrClosed) {
		if isBadInput(err) {
			t.log.Warn("ctrl: closing controller connection: bad input", "remote", c.RemoteAddr().String(), "err", err)
		} else {
			t.log.Debug("ctrl: controller connection ended", "remote", c.RemoteAddr().String(), "err", err)
		}
	}
	sc.finish()
}

// badInput marks an error caused by what the peer sent (as opposed to the connection failing).
type badInput struct{ err error }

func (e badInput) Error() string { return e.err.Error() }
func (e badInput) Unwrap() error { return e.err }

func isBadInput(err error) bool {
	var b badInput
	return errors.As(err, &b)
}

// stepInbound hands a raft message to the attached Node.
func (t *Net) stepInbound(m raftpb.Message) {
	n := t.node.Load()
	if n == nil {
		t.dropped.Add(1)
		return
	}
	if m.To != n.cfg.ID {
		t.log.Warn("ctrl: raft message for another controller dropped", "to", m.To, "self", n.cfg.ID, "from", m.From)
		return
	}
	if err := n.Step(m); err != nil {
		t.log.Debug("ctrl: raft step", "type", m.Type.String(), "from", m.From, "err", err)
	}
}
