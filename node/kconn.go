package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kconnMaxResponse caps a response's size field: a corrupt or hostile length
// must not make us allocate gigabytes. Replica fetches are bounded by
// replica.fetch.response.max.bytes (10 MiB by default), far below it.
const kconnMaxResponse = 256 << 20

// kconn is one client connection to a Kafka broker (sluice's replica
// fetcher talks to other brokers with it). It sends one request at a time
// and waits for its response; kmsg does all the encoding.
//
// Concurrency: not safe for concurrent use: Request and Close are called by
// the one goroutine that owns the conn. Another goroutine aborts a Request
// by cancelling its ctx.
type kconn struct {
	addr string
	c    net.Conn
	fmt  *kmsg.RequestFormatter
	corr int32
	buf  []byte // request encoding buffer, reused
	err  error  // sticky: set when the conn was closed
	// reuseResponses: the caller is done with each response (and every
	// slice of it) before its next request, so one receive buffer serves
	// them all. Replica fetchers set it: their fetch responses are the
	// largest and most frequent, and a fresh one each time cost a clear of
	// megabytes and garbage for the collector.
	reuseResponses bool
	rbuf           []byte
}

// kconnKeepRecv bounds the receive buffer a reusing kconn keeps.
const kconnKeepRecv = 32 << 20

// dialKafka connects to the broker at addr (host:port). ctx bounds the dial.
func dialKafka(ctx context.Context, addr, clientID string) (*kconn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial broker %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// Requests are written whole; Nagle would only delay them.
		tc.SetNoDelay(true)
	}
	return &kconn{addr: addr, c: c, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}, nil
}

// errKconnClosed is returned by Request after the conn was closed.
var errKconnClosed = errors.New("kafka connection closed")

// Request sends req (at the version the caller set with SetVersion) and
// returns its decoded response. ctx's deadline bounds the whole exchange and
// cancelling ctx aborts it. Any error closes the connection: a request cut
// mid-way leaves the stream unusable. Not safe for concurrent use.
func (c *kconn) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	resp, err := c.request(ctx, req)
	if err != nil {
		// The conn deadline may fire a hair before ctx's own timer: name
		// the cause the caller can test for either way.
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		} else if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		err = fmt.Errorf("%s v%d to broker %s: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), c.addr, err)
		c.close(err)
		return nil, err
	}
	return resp, nil
}

func (c *kconn) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	dl, _ := ctx.Deadline() // zero: no deadline
	if err := c.c.SetDeadline(dl); err != nil {
		return nil, err
	}
	// Cancellation without a deadline (a fetcher being stopped) must also
	// end a read parked on a long-poll fetch: a past deadline does that.
	// Waiting for a started f keeps it from hitting the next request.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.c.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()

	c.corr++
	corr := c.corr
	c.buf = c.fmt.AppendRequest(c.buf[:0], req, corr)
	if _, err := c.c.Write(c.buf); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	if cap(c.buf) > 1<<20 {
		c.buf = nil // do not pin a huge buffer between requests
	}

	var hdr [8]byte
	if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
		return nil, fmt.Errorf("read response header: %w", err)
	}
	size := int32(binary.BigEndian.Uint32(hdr[:4]))
	if size < 4 || size > kconnMaxResponse {
		return nil, fmt.Errorf("response size %d outside [4, %d]", size, kconnMaxResponse)
	}
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		return nil, fmt.Errorf("response correlation id %d, want %d", got, corr)
	}
	// kmsg's decoded fields (record batches) alias the body: a fresh buffer
	// per response unless the caller drops each before the next request.
	var body []byte
	if c.reuseResponses && cap(c.rbuf) >= int(size-4) {
		body = c.rbuf[:size-4]
	} else {
		body = make([]byte, size-4)
		if c.reuseResponses && len(body) <= kconnKeepRecv {
			c.rbuf = body
		}
	}
	if _, err := io.ReadFull(c.c, body); err != nil {
		return nil, fmt.Errorf("read response body (%d bytes): %w", len(body), err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	// Flexible responses carry a tagged-field section in their header,
	// except ApiVersions (clients parse it before knowing versions).
	if resp.IsFlexible() && req.Key() != 18 {
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		if err := r.Complete(); err != nil {
			return nil, fmt.Errorf("response header tags: %w", err)
		}
		body = r.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return resp, nil
}

// Close closes the connection; later Requests fail. Idempotent; for the
// owning goroutine.
func (c *kconn) Close() { c.close(errKconnClosed) }

func (c *kconn) close(err error) {
	if c.err == nil {
		c.err = err
	}
	c.c.Close()
}
