package netpoll

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"sync/atomic"
)

// Handler serves requests. netpoll calls Serve on the connection's event-loop
// goroutine, once per request, in the order requests arrive on that
// connection. Serve must not block and must not panic: hand slow work to
// another goroutine and answer from there. Every request must eventually be
// answered with exactly one call to Respond or NoResponse; until then, later
// responses on the same connection wait (Kafka requires responses in request
// order).
type Handler interface {
	Serve(req *Request)
}

// HandlerFunc adapts a function to Handler. Its Serve has the concurrency
// rules of Handler.Serve.
type HandlerFunc func(req *Request)

// Serve calls f(req).
func (f HandlerFunc) Serve(req *Request) { f(req) }

// ConnObserver is optionally implemented by a Handler to learn about
// connection lifetimes (to drop fetch sessions, SASL state, parked requests).
// Both methods run on the connection's event-loop goroutine and must not
// block. ConnClosed runs once per ConnOpened, after which no more requests of
// that connection are served; answers to its outstanding requests are still
// accepted and discarded.
type ConnObserver interface {
	ConnOpened(c *Conn)
	ConnClosed(c *Conn)
}

const (
	statePending  uint32 = iota // handed to Serve, not answered
	stateAnswered               // Respond/NoResponse called while the conn was open
	stateDropped                // answered after the conn closed
)

// Request is one framed Kafka request.
//
// The exported fields are set before Serve and never changed by netpoll; read
// them from any goroutine. Body stays valid until Respond or NoResponse is
// called; netpoll reuses its memory once the response has been written, so
// response Parts may alias Body (an echo is fine) but nothing else may keep
// it. ClientID is a string of its own (shared between requests of one
// connection), not tied to Body.
//
// A Request is not reused by netpoll, but after answering, the handler must
// not call Respond or NoResponse on it again.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	// ClientID is the header's client_id; nil when the client sent null
	// (and for ControlledShutdown v0, whose header has no client_id).
	ClientID *string
	// Body is the request after its header: feed it to kmsg's ReadFrom.
	Body []byte
	// Conn is the connection the request arrived on.
	Conn *Conn

	flexible bool    // request header v2: response header v1 unless ApiVersions
	size     int32   // frame size, for in-flight byte accounting
	buf      *[]byte // pooled frame buffer that Body points into
	next     *Request

	// state moves pending -> answered|dropped exactly once, under Conn.mu;
	// parts and noResp are written before it becomes answered, so the loop
	// may read them after loading state without the lock.
	state  atomic.Uint32
	parts  []Part
	noResp bool

	hdr    [9]byte // size prefix + correlation id + empty tag buffer
	hdrLen uint8
}

// RemoteAddr is the client's address, the same as r.Conn.RemoteAddr(). Safe
// for concurrent use.
func (r *Request) RemoteAddr() net.Addr { return r.Conn.remote }

// Flexible reports whether the request used header v2 (the API version is
// flexible), so the body uses compact encodings and tagged fields. Safe for
// concurrent use.
func (r *Request) Flexible() bool { return r.flexible }

// Respond answers the request with a body made of parts, which are written in
// order after the response header netpoll adds (size prefix, correlation id,
// and for flexible versions other than ApiVersions an empty tag buffer).
// Safe for concurrent use, from any goroutine, including inside Serve. It never
// blocks on the network. netpoll keeps the parts slice until the response is
// written and may modify it (clearing release callbacks it has run). Calling
// Respond or NoResponse a second time is a bug: it is logged and the extra
// parts are released unwritten.
func (r *Request) Respond(parts ...Part) { r.answer(parts, false) }

// NoResponse finishes a request that gets no response (produce with acks=0).
// Responses to later requests still wait for it, so order is preserved. Same
// concurrency rules as Respond.
func (r *Request) NoResponse() { r.answer(nil, true) }

func (r *Request) answer(parts []Part, none bool) {
	c := r.Conn
	c.mu.Lock()
	if r.state.Load() != statePending {
		c.mu.Unlock()
		c.srv.log.Error("netpoll: BUG: request answered twice",
			"remote", c.remote, "key", r.Key, "correlation_id", r.CorrelationID)
		releaseParts(parts)
		return
	}
	if c.closed {
		r.state.Store(stateDropped)
		c.mu.Unlock()
		releaseParts(parts)
		putBuf(r.buf)
		r.buf, r.Body = nil, nil
		return
	}
	r.parts, r.noResp = parts, none
	r.state.Store(stateAnswered)
	// The wake happens under mu so that it cannot race with OnClose: once
	// closed is set the loop (and perhaps its poller) may be gone.
	c.kickLocked()
	c.mu.Unlock()
}

// encodeHeader builds the size prefix and response header once the parts are
// known. Runs on the loop.
func (r *Request) encodeHeader() error {
	total := int64(4) // correlation id
	n := 8
	// ApiVersions always answers with header v0 so that a client can parse
	// the answer even when it guessed a version the broker does not speak.
	if r.flexible && r.Key != apiVersionsKey {
		total++
		n = 9
	}
	for i := range r.parts {
		total += r.parts[i].Len()
	}
	if total > math.MaxInt32 {
		return fmt.Errorf("response of %d bytes does not fit a Kafka frame", total)
	}
	binary.BigEndian.PutUint32(r.hdr[0:], uint32(total))
	binary.BigEndian.PutUint32(r.hdr[4:], uint32(r.CorrelationID))
	r.hdr[8] = 0 // empty tagged fields
	r.hdrLen = uint8(n)
	return nil
}

// segLen is the length of wire segment i of the response: 0 is the header,
// i>0 is parts[i-1].
func (r *Request) segLen(i int) int64 {
	if i == 0 {
		return int64(r.hdrLen)
	}
	return r.parts[i-1].Len()
}
