package perf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxResponse bounds a response frame: a produce response is tiny, so
// anything near this is a framing bug, not data.
const maxResponse = 64 << 20

// rawConn is one TCP connection to a partition leader. One writer goroutine
// sends pre-encoded requests and one reader goroutine matches responses in
// order (Kafka answers a connection's requests in the order sent). Nothing
// else touches the conn after prepare.
type rawConn struct {
	id      int
	conn    net.Conn
	rd      *bufio.Reader
	reqs    []*rawRequest
	headers [][]byte // this connection's patched copies of reqs[i].header
	corr    int32
}

func dialRaw(id int, addr string) (*rawConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{id: id, conn: conn, rd: bufio.NewReaderSize(conn, 64<<10)}, nil
}

// readFrame reads one size-prefixed response into buf (grown as needed).
func (c *rawConn) readFrame(buf []byte) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(c.rd, sz[:]); err != nil {
		return buf, err
	}
	n := int(int32(binary.BigEndian.Uint32(sz[:])))
	if n < 4 || n > maxResponse {
		return buf, fmt.Errorf("response frame of %d bytes", n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(c.rd, buf)
	return buf, err
}

// roundTrip sends one request synchronously; used only before the run
// (ApiVersions), never while requests are pipelined.
func (c *rawConn) roundTrip(f *kmsg.RequestFormatter, req kmsg.Request, resp kmsg.Response) error {
	c.corr++
	if _, err := c.conn.Write(f.AppendRequest(nil, req, c.corr)); err != nil {
		return err
	}
	frame, err := c.readFrame(nil)
	if err != nil {
		return err
	}
	body, err := responseBody(frame, c.corr, req.IsFlexible() && req.Key() != 18)
	if err != nil {
		return err
	}
	return resp.ReadFrom(body)
}

// produceVersion asks the broker which Produce versions it serves. v3 is
// the first with v2 RecordBatches; above v13 the request shape is unknown to
// this kmsg.
func (c *rawConn) produceVersion(f *kmsg.RequestFormatter) (int16, error) {
	req := kmsg.NewPtrApiVersionsRequest() // v0: every broker answers it
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := c.roundTrip(f, req, resp); err != nil {
		return 0, fmt.Errorf("api versions: %w", err)
	}
	if resp.ErrorCode != 0 {
		return 0, fmt.Errorf("api versions: error code %d", resp.ErrorCode)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 0 {
			v := min(k.MaxVersion, (&kmsg.ProduceRequest{}).MaxVersion())
			if v < 3 {
				return 0, fmt.Errorf("broker's Produce max version %d predates RecordBatch v2", v)
			}
			return v, nil
		}
	}
	return 0, errors.New("broker does not list Produce in ApiVersions")
}

// responseBody checks the correlation id and skips the response header
// (v1 headers, used by flexible responses except ApiVersions, end in a
// tagged-field section that kmsg leaves to the transport).
func responseBody(frame []byte, corr int32, flexibleHeader bool) ([]byte, error) {
	if len(frame) < 4 {
		return nil, errors.New("short response")
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d: responses out of order", got, corr)
	}
	b := frame[4:]
	if !flexibleHeader {
		return b, nil
	}
	ntags, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errors.New("bad response header tag count")
	}
	b = b[n:]
	for range ntags {
		if _, n = binary.Uvarint(b); n <= 0 { // tag key
			return nil, errors.New("bad response header tag")
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < size {
			return nil, errors.New("bad response header tag size")
		}
		b = b[n+int(size):]
	}
	return b, nil
}
