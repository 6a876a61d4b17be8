package ctrl

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// Frames of the controller listener (see net.go for the format). Encoding and decoding are pure; readFrame is the
// only code that meets untrusted bytes first, and it bounds every allocation by what actually arrived.

// Frame kinds.
const (
	frameRaft     byte = 1 // body: raftpb.Message.Marshal()
	frameRequest  byte = 2 // body: u64 correlation id, JSON rpcRequest
	frameResponse byte = 3 // body: u64 correlation id, JSON rpcResponse
)

// MaxFrameSize bounds the length field of a frame (kind byte + body). A longer frame closes the connection.
const MaxFrameSize = 64 << 20

// netFrameHeader is the u32 length plus the kind byte.
const netFrameHeader = 5

var errFrameTooBig = errors.New("frame above the 64 MiB limit")

// rpcRequest is the JSON of a request frame.
type rpcRequest struct {
	Method string          `json:"method"`
	Body   json.RawMessage `json:"body"`
}

// rpcResponse is the JSON of a response frame: Code is a Kafka error code (0 = success, Body then holds the
// method's result); on NOT_CONTROLLER Leader hints at the raft id of the active controller (0 if unknown).
type rpcResponse struct {
	Code   int16           `json:"code"`
	Msg    string          `json:"msg,omitempty"`
	Leader uint64          `json:"leader,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// appendFrameHeader appends the header of a frame whose body is bodyLen bytes.
func appendFrameHeader(dst []byte, kind byte, bodyLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(bodyLen+1))
	return append(dst, kind)
}

// raftFrame encodes m as a kind-1 frame.
func raftFrame(m *raftpb.Message) ([]byte, error) {
	size := m.Size()
	if size+1 > MaxFrameSize {
		return nil, fmt.Errorf("ctrl: raft %v to %d is %d bytes, above the frame limit", m.Type, m.To, size)
	}
	b := make([]byte, netFrameHeader+size)
	appendFrameHeader(b[:0], frameRaft, size)
	if _, err := m.MarshalTo(b[netFrameHeader:]); err != nil {
		return nil, fmt.Errorf("ctrl: marshal raft %v: %w", m.Type, err)
	}
	return b, nil
}

// rpcFrame encodes a kind-2 or kind-3 frame: correlation id, then v as JSON.
func rpcFrame(kind byte, corr uint64, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("ctrl: encode rpc frame: %w", err)
	}
	if 8+len(j)+1 > MaxFrameSize {
		return nil, fmt.Errorf("ctrl: rpc frame of %d bytes, above the frame limit", 8+len(j))
	}
	b := make([]byte, 0, netFrameHeader+8+len(j))
	b = appendFrameHeader(b, kind, 8+len(j))
	b = binary.BigEndian.AppendUint64(b, corr)
	return append(b, j...), nil
}

// readFrame reads one frame. Errors other than io.EOF at a frame boundary mean bad input (or a broken
// connection): the caller closes the connection. Bodies above 1 MiB are read as they arrive, so a peer that
// announces 64 MiB and sends nothing costs nothing.
func readFrame(r io.Reader) (kind byte, body []byte, err error) {
	var hdr [netFrameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, badInput{fmt.Errorf("truncated frame header: %w", err)}
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	kind = hdr[4]
	switch {
	case n == 0:
		return 0, nil, badInput{errors.New("frame of length 0 (no kind byte)")}
	case n > MaxFrameSize:
		return 0, nil, badInput{fmt.Errorf("%w: length %d", errFrameTooBig, n)}
	case kind < frameRaft || kind > frameResponse:
		return 0, nil, badInput{fmt.Errorf("unknown frame kind %d", kind)}
	}
	size := int(n - 1)
	if size <= 1<<20 {
		body = make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return 0, nil, truncated(size, err)
		}
		return kind, body, nil
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(size)); err != nil {
		return 0, nil, truncated(size, err)
	}
	return kind, buf.Bytes(), nil
}

// truncated describes a body cut short; a clean EOF inside a frame is bad input (the peer stopped mid-frame).
func truncated(size int, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return badInput{fmt.Errorf("truncated frame body (%d bytes announced): %w", size, io.ErrUnexpectedEOF)}
	}
	return fmt.Errorf("frame body (%d bytes announced): %w", size, err)
}

// parseRPC splits a kind-2/3 body into its correlation id and JSON, decoded into v (*rpcRequest or *rpcResponse).
func parseRPC(body []byte, v any) (uint64, error) {
	if len(body) < 8 {
		return 0, badInput{fmt.Errorf("rpc frame body of %d bytes, shorter than its correlation id", len(body))}
	}
	corr := binary.BigEndian.Uint64(body)
	if err := json.Unmarshal(body[8:], v); err != nil {
		return corr, badInput{fmt.Errorf("rpc frame %d: %w", corr, err)}
	}
	return corr, nil
}
