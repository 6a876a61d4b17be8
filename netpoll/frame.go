package netpoll

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxFrameSize is Kafka's socket.request.max.bytes default (100 MiB).
const DefaultMaxFrameSize = 104857600

const (
	apiVersionsKey        = 18
	controlledShutdownKey = 7
	// A v1/v2 header needs api_key, api_version, correlation_id and the
	// client_id length: 2+2+4+2 bytes.
	minHeaderLen = 10
	// ControlledShutdown v0 uses header v0, which has no client_id.
	minHeaderV0Len = 8
)

// flexFrom[key] is the first version of key whose request uses header v2
// (tagged fields), or -1 if kmsg knows no flexible version of it.
//
// It is derived once from kmsg (RequestForKey + SetVersion + IsFlexible) rather
// than by calling kmsg per request: RequestForKey allocates a whole request
// struct and a shared instance would not be safe across event loops. kmsg
// generates IsFlexible as "Version >= N", so one threshold per key is exact,
// including for versions above MaxVersion; TestFlexTableMatchesKmsg checks it.
var flexFrom = buildFlexTable()

func buildFlexTable() []int16 {
	t := make([]int16, kmsg.MaxKey+1)
	for k := range t {
		t[k] = -1
		r := kmsg.RequestForKey(int16(k))
		if r == nil {
			continue
		}
		for v := int16(0); v <= r.MaxVersion(); v++ {
			r.SetVersion(v)
			if r.IsFlexible() {
				t[k] = v
				break
			}
		}
	}
	return t
}

// isFlexible reports whether requests of key at version use request header v2.
// Unknown keys are not flexible: their header is parsed as v1 and the node
// answers (or closes) as it sees fit.
func isFlexible(key, version int16) bool {
	if key < 0 || int(key) >= len(flexFrom) {
		return false
	}
	f := flexFrom[key]
	return f >= 0 && version >= f
}

// reqHeader is a parsed request header. clientID aliases the frame.
type reqHeader struct {
	key          int16
	version      int16
	corr         int32
	clientID     []byte
	clientIDNull bool
	flexible     bool // request header v2; the response uses header v1 unless key is ApiVersions
}

var (
	errHeaderShort    = errors.New("request header shorter than its fixed fields")
	errClientIDLength = errors.New("request header client_id length out of range")
	errTaggedFields   = errors.New("request header tagged fields malformed")
)

// parseHeader parses the request header at the start of frame (the bytes after
// the size prefix) and returns it with the offset where the body starts.
// It never panics and never allocates; any structural problem is an error.
func parseHeader(frame []byte) (h reqHeader, bodyOff int, err error) {
	if len(frame) < minHeaderV0Len {
		return h, 0, errHeaderShort
	}
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.corr = int32(binary.BigEndian.Uint32(frame[4:]))
	if h.key == controlledShutdownKey && h.version == 0 {
		h.clientIDNull = true
		return h, minHeaderV0Len, nil
	}
	if len(frame) < minHeaderLen {
		return h, 0, errHeaderShort
	}
	n := int(int16(binary.BigEndian.Uint16(frame[8:])))
	off := minHeaderLen
	switch {
	case n == -1:
		h.clientIDNull = true
	case n < -1 || n > len(frame)-off:
		return h, 0, errClientIDLength
	default:
		h.clientID = frame[off : off+n]
		off += n
	}
	h.flexible = isFlexible(h.key, h.version)
	if !h.flexible {
		return h, off, nil
	}
	// Header v2 ends with tagged fields. None are defined for requests
	// today, so they are validated and skipped.
	r := kbin.Reader{Src: frame[off:]}
	for numTags := r.Uvarint(); numTags > 0 && r.Ok(); numTags-- {
		r.Uvarint() // tag
		size := r.Uvarint()
		if size > uint32(len(r.Src)) {
			return h, 0, errTaggedFields
		}
		r.Span(int(size))
	}
	if !r.Ok() {
		return h, 0, errTaggedFields
	}
	return h, len(frame) - len(r.Src), nil
}

// frameSizeError is a size prefix outside [0, max].
type frameSizeError struct{ size, max int32 }

func (e *frameSizeError) Error() string {
	return fmt.Sprintf("frame size %d outside [0, %d]", e.size, e.max)
}

// inbound is the part of gnet.Conn that the framer reads from; it lets the
// fuzz test drive the real framer without sockets.
type inbound interface {
	InboundBuffered() int
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	Read(p []byte) (int, error)
}

// framer assembles one frame at a time. Once the size prefix is known, the
// frame's bytes are copied straight from gnet's read buffer into a pooled
// buffer of exactly that size as they arrive, so a frame split over many reads
// is copied once and never accumulates in (or regrows) gnet's inbound ring.
// Owned by one event loop.
type framer struct {
	buf  *[]byte // frame being assembled (header + body), nil between frames
	fill int
	size int32
}

func (f *framer) active() bool { return f.buf != nil }

// start consumes a size prefix if one is buffered and allocates the frame.
// It returns false if fewer than 4 bytes are available.
func (f *framer) start(src inbound, maxSize int32) (bool, error) {
	if src.InboundBuffered() < 4 {
		return false, nil
	}
	p, err := src.Peek(4)
	if err != nil {
		return false, nil
	}
	size := int32(binary.BigEndian.Uint32(p))
	if size < 0 || size > maxSize {
		return false, &frameSizeError{size: size, max: maxSize}
	}
	_, _ = src.Discard(4)
	f.buf = getBuf(int(size))
	f.fill = 0
	f.size = size
	return true, nil
}

// more copies available bytes into the frame and returns how many it took
// and whether the frame is complete.
func (f *framer) more(src inbound) (int, bool) {
	b := *f.buf
	if f.fill == len(b) {
		return 0, true
	}
	n, _ := src.Read(b[f.fill:])
	f.fill += n
	return n, f.fill == len(b)
}

// take hands the completed frame's buffer to the caller.
func (f *framer) take() *[]byte {
	b := f.buf
	f.buf, f.fill, f.size = nil, 0, 0
	return b
}

// reset drops a partial frame (connection closing).
func (f *framer) reset() {
	if f.buf != nil {
		putBuf(f.buf)
	}
	f.buf, f.fill, f.size = nil, 0, 0
}
