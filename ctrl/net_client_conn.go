package ctrl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// clientConn is one persistent connection from a Client to one controller, multiplexing calls by correlation id.
// It is closed only when a read or write fails (or the Client closes): the controller fences the brokers whose
// heartbeats a closing connection carried, so a call timing out must not close it.
type clientConn struct {
	c    net.Conn
	wmu  sync.Mutex    // serializes frame writes
	done chan struct{} // closed when the connection failed

	mu    sync.Mutex
	seq   uint64
	calls map[uint64]chan rpcResponse
	err   error // why it failed; set before done closes
}

// errConn marks an error of the connection itself (not an answer): the call may be retried elsewhere.
type errConn struct{ err error }

func (e errConn) Error() string { return "ctrl: controller connection: " + e.err.Error() }
func (e errConn) Unwrap() error { return e.err }

func newClientConn(c net.Conn) *clientConn {
	cc := &clientConn{c: c, done: make(chan struct{}), calls: map[uint64]chan rpcResponse{}}
	go cc.readLoop()
	return cc
}

func (cc *clientConn) broken() bool {
	select {
	case <-cc.done:
		return true
	default:
		return false
	}
}

func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil {
		return
	}
	cc.err = err
	close(cc.done)
	_ = cc.c.Close()
}

func (cc *clientConn) readLoop() {
	br := bufio.NewReaderSize(cc.c, 64<<10)
	for {
		kind, body, err := readFrame(br)
		if err == nil && kind != frameResponse {
			err = fmt.Errorf("frame kind %d from a controller", kind)
		}
		var resp rpcResponse
		var corr uint64
		if err == nil {
			corr, err = parseRPC(body, &resp)
		}
		if err != nil {
			cc.fail(err)
			return
		}
		cc.mu.Lock()
		ch := cc.calls[corr]
		delete(cc.calls, corr)
		cc.mu.Unlock()
		if ch != nil { // nil: the call gave up waiting
			ch <- resp
		}
	}
}

// roundTrip sends one request and waits for its answer, the connection failing, or ctx. Errors of the
// connection are errConn; ctx's error comes back as is.
func (cc *clientConn) roundTrip(ctx context.Context, method string, body any) (rpcResponse, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return rpcResponse{}, fmt.Errorf("ctrl: encode %s request: %w", method, err)
	}
	ch := make(chan rpcResponse, 1)
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return rpcResponse{}, errConn{err}
	}
	cc.seq++
	corr := cc.seq
	cc.calls[corr] = ch
	cc.mu.Unlock()
	forget := func() {
		cc.mu.Lock()
		delete(cc.calls, corr)
		cc.mu.Unlock()
	}
	f, err := rpcFrame(frameRequest, corr, rpcRequest{Method: method, Body: raw})
	if err != nil {
		forget()
		return rpcResponse{}, err
	}
	cc.wmu.Lock()
	_ = cc.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = cc.c.Write(f)
	cc.wmu.Unlock()
	if err != nil {
		forget()
		cc.fail(err)
		return rpcResponse{}, errConn{err}
	}
	select {
	case r := <-ch:
		return r, nil
	case <-cc.done:
		forget()
		select { // the answer may have arrived just before the failure
		case r := <-ch:
			return r, nil
		default:
		}
		cc.mu.Lock()
		err := cc.err
		cc.mu.Unlock()
		return rpcResponse{}, errConn{err}
	case <-ctx.Done():
		forget()
		return rpcResponse{}, ctx.Err()
	}
}

// isConnErr reports whether err is a connection failure (dial, read, write) rather than an answer.
func isConnErr(err error) bool {
	var ce errConn
	return errors.As(err, &ce)
}
