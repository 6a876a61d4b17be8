package netpoll

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Conn is one client connection as the node sees it.
//
// ID, RemoteAddr, LocalAddr, Value, SetValue and Close are safe for concurrent
// use from any goroutine. Everything else in the struct belongs to the
// connection's event loop.
type Conn struct {
	id     uint64
	srv    *Server
	gc     gnet.Conn
	remote net.Addr
	local  net.Addr
	value  atomic.Pointer[any]

	// closing: no new requests are read; the connection closes once every
	// request already read has been answered and written (Close, Stop).
	closing atomic.Bool
	// wakeArmed is true while a gnet Wake is queued or the loop is inside
	// OnTraffic for this conn; answers that find it set need no new wake.
	wakeArmed atomic.Bool
	// writable is set by the writability watcher, consumed by the loop.
	writable atomic.Bool

	mu     sync.Mutex // guards closed and answer hand-off; see doc.go for lock order
	closed bool

	// Loop-only state.
	fr            framer
	head, tail    *Request // requests read and not yet fully written, in order
	inflight      int
	inflightBytes int64
	wseg          int   // segment of head being written (0 = header)
	woff          int64 // bytes of that segment already written
	waitWritable  bool  // last write hit EAGAIN; the watcher is armed
	watchAdded    bool  // fd registered with the watcher's epoll
	yield         bool  // write budget used up; come back via Wake
	budget        int64
	copyBuf       *[]byte
	copyPend      []byte // bytes of a file range read by the copy path, not yet written
	iov           []unix.Iovec
	lastClientID  *string
}

// ID is unique per Server for the life of the process. Safe for concurrent use.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the client's address. Safe for concurrent use.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the address the client connected to. Safe for concurrent use.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// Value returns what SetValue stored (nil if nothing). Safe for concurrent use.
func (c *Conn) Value() any {
	if p := c.value.Load(); p != nil {
		return *p
	}
	return nil
}

// SetValue attaches v to the connection (fetch sessions, SASL state, ...).
// Safe for concurrent use.
func (c *Conn) SetValue(v any) { c.value.Store(&v) }

// Close stops reading requests from c and closes it once every request
// already read has been answered and its response written. Requests that are
// never answered keep it open; Server.Stop's deadline bounds that. Safe for
// concurrent use; does not block.
func (c *Conn) Close() {
	c.closing.Store(true)
	c.kick()
}

// kick makes sure the loop will look at c soon. Safe for concurrent use.
func (c *Conn) kick() {
	c.mu.Lock()
	c.kickLocked()
	c.mu.Unlock()
}

func (c *Conn) kickLocked() {
	if c.closed || !c.wakeArmed.CompareAndSwap(false, true) {
		return
	}
	if err := c.gc.Wake(nil); err != nil {
		// The engine is shutting down; OnClose will run for c.
		c.wakeArmed.Store(false)
	}
}

var errInboundOverflow = errors.New("too many unread bytes buffered while paused")

// onTraffic runs on the loop for socket reads and for wakes.
func (c *Conn) onTraffic() gnet.Action {
	c.wakeArmed.Store(true)
	c.budget = c.srv.cfg.WriteBudget
	if err := c.run(); err != nil {
		c.srv.closeForError(c, err)
		return gnet.Close
	}
	if c.closing.Load() && c.head == nil {
		return gnet.Close
	}
	c.wakeArmed.Store(false)
	// An answer or writability signal that arrived while wakeArmed was set
	// did not wake us; look again (via the loop's task queue, so other
	// connections get their turn).
	if c.yield || c.writable.Load() ||
		(c.head != nil && !c.waitWritable && c.head.state.Load() == stateAnswered) ||
		(c.closing.Load() && c.head == nil) {
		c.yield = false
		c.kick()
	}
	return gnet.None
}

// run alternates writing finished responses and reading new requests until
// neither makes progress.
func (c *Conn) run() error {
	for {
		wrote, err := c.pump()
		if err != nil {
			return err
		}
		read, err := c.readFrames()
		if err != nil {
			return err
		}
		if !wrote && !read {
			return nil
		}
	}
}

// readFrames dispatches every complete request the backpressure limits allow.
func (c *Conn) readFrames() (dispatched bool, err error) {
	s := c.srv
	for {
		if c.closing.Load() {
			// Closing: nothing new is served, a partial frame is
			// dropped at close. gnet still buffers what arrives.
			if c.gc.InboundBuffered() > s.cfg.MaxBufferedInbound {
				return dispatched, errInboundOverflow
			}
			return dispatched, nil
		}
		if !c.fr.active() {
			if c.inflight > 0 && (c.inflight >= s.cfg.MaxInFlightRequests ||
				c.inflightBytes >= s.cfg.MaxInFlightBytes) {
				// Paused: bytes stay in gnet's inbound buffer, which
				// gnet keeps filling from the socket (see doc.go).
				if c.gc.InboundBuffered() > s.cfg.MaxBufferedInbound {
					return dispatched, errInboundOverflow
				}
				return dispatched, nil
			}
			ok, err := c.fr.start(c.gc, s.cfg.MaxFrameSize)
			if err != nil || !ok {
				return dispatched, err
			}
			c.inflight++
			c.inflightBytes += int64(c.fr.size)
			s.stats.inFlight.Add(1)
			s.stats.bytesIn.Add(4)
		}
		n, done := c.fr.more(c.gc)
		s.stats.bytesIn.Add(uint64(n))
		if !done {
			return dispatched, nil
		}
		size := c.fr.size
		buf := c.fr.take()
		if err := c.dispatch(buf, size); err != nil {
			putBuf(buf)
			return dispatched, err
		}
		dispatched = true
	}
}

func (c *Conn) dispatch(buf *[]byte, size int32) error {
	frame := *buf
	h, off, err := parseHeader(frame)
	if err != nil {
		return err
	}
	r := &Request{
		Key:           h.key,
		Version:       h.version,
		CorrelationID: h.corr,
		Body:          frame[off:],
		Conn:          c,
		flexible:      h.flexible,
		size:          size,
		buf:           buf,
	}
	if !h.clientIDNull {
		// Clients send the same id on every request: reuse the string.
		if c.lastClientID == nil || *c.lastClientID != string(h.clientID) {
			id := string(h.clientID)
			c.lastClientID = &id
		}
		r.ClientID = c.lastClientID
	}
	if c.tail == nil {
		c.head = r
	} else {
		c.tail.next = r
	}
	c.tail = r
	c.srv.stats.requests.Add(1)
	c.srv.handler.Serve(r)
	return nil
}

// finishHead retires the head request after its response is written (or it
// had none).
func (c *Conn) finishHead() {
	r := c.head
	c.head = r.next
	if c.head == nil {
		c.tail = nil
	}
	r.next = nil
	releaseParts(r.parts)
	putBuf(r.buf)
	r.buf, r.Body = nil, nil
	c.inflight--
	c.inflightBytes -= int64(r.size)
	c.wseg, c.woff = 0, 0
	c.srv.stats.inFlight.Add(-1)
	if !r.noResp {
		c.srv.stats.responses.Add(1)
	}
}

// onClose releases everything the connection holds. Runs on the loop.
func (c *Conn) onClose() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	// No answer can change state now: parts of requests answered before
	// the close are ours to release; later answers release their own.
	for r := c.head; r != nil; {
		next := r.next
		r.next = nil
		if r.state.Load() == stateAnswered {
			releaseParts(r.parts)
			putBuf(r.buf)
			r.buf, r.Body = nil, nil
		}
		r = next
	}
	c.head, c.tail = nil, nil
	c.fr.reset()
	if c.copyBuf != nil {
		putBuf(c.copyBuf)
		c.copyBuf, c.copyPend = nil, nil
	}
	c.srv.stats.inFlight.Add(-int64(c.inflight))
	c.inflight, c.inflightBytes = 0, 0
}

// cloneAddr copies a gnet address: gnet recycles the bytes of an IPv6 zone
// when the connection is released, and Conn outlives that.
func cloneAddr(a net.Addr) net.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return &net.TCPAddr{IP: append(net.IP(nil), t.IP...), Port: t.Port, Zone: strings.Clone(t.Zone)}
	}
	return a
}
