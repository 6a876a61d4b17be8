package netpoll

import (
	"encoding/binary"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// chunkedInbound feeds the framer like gnet does: bytes become visible a
// chunk at a time, Peek may span chunks.
type chunkedInbound struct {
	buf    []byte // visible, unread
	chunks [][]byte
}

func (c *chunkedInbound) InboundBuffered() int { return len(c.buf) }

func (c *chunkedInbound) Peek(n int) ([]byte, error) {
	if n > len(c.buf) {
		return nil, io.ErrShortBuffer
	}
	return c.buf[:n], nil
}

func (c *chunkedInbound) Discard(n int) (int, error) {
	n = min(n, len(c.buf))
	c.buf = c.buf[n:]
	return n, nil
}

func (c *chunkedInbound) Read(p []byte) (int, error) {
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	if n == 0 && len(p) > 0 {
		return 0, io.ErrShortBuffer
	}
	return n, nil
}

// deliver makes the next chunk visible; false when all were delivered.
func (c *chunkedInbound) deliver() bool {
	if len(c.chunks) == 0 {
		return false
	}
	c.buf = append(c.buf, c.chunks[0]...)
	c.chunks = c.chunks[1:]
	return true
}

// FuzzFrame drives the real framer and header parser over arbitrary bytes
// split into arbitrary reads. It must never panic, every frame it yields must
// be exactly the bytes the size prefix announced, and it must stop at the
// first invalid size.
func FuzzFrame(f *testing.F) {
	for _, r := range []kmsg.Request{
		&kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "a", ClientSoftwareVersion: "1"},
		&kmsg.MetadataRequest{Version: 9},
		&kmsg.ProduceRequest{Version: 7, Acks: -1},
	} {
		fr := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fz")).AppendRequest(nil, r, 3)
		f.Add(append(fr, fr...), uint8(1))
		f.Add(fr, uint8(7))
	}
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff}, uint8(2))
	f.Add([]byte{0, 0, 0, 0}, uint8(0))
	f.Add([]byte{0, 0, 0, 9, 0, 7, 0, 0, 0, 0, 0, 1, 9}, uint8(3))
	const maxSize = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		src := &chunkedInbound{}
		step := int(split%16) + 1
		for i := 0; i < len(data); i += step {
			src.chunks = append(src.chunks, data[i:min(len(data), i+step)])
		}
		var fr framer
		pos := 0 // offset in data of the next frame's size prefix
		for src.deliver() {
			for {
				if !fr.active() {
					ok, err := fr.start(src, maxSize)
					if err != nil {
						size := int32(binary.BigEndian.Uint32(data[pos:]))
						if size >= 0 && size <= maxSize {
							t.Fatalf("rejected valid size %d", size)
						}
						return
					}
					if !ok {
						break
					}
				}
				if _, done := fr.more(src); !done {
					break
				}
				size := int(fr.size)
				buf := fr.take()
				frame := *buf
				if len(frame) != size || string(frame) != string(data[pos+4:pos+4+size]) {
					t.Fatalf("frame at %d: got %d bytes, want %d", pos, len(frame), size)
				}
				if h, off, err := parseHeader(frame); err == nil && (off > len(frame) || off < minHeaderV0Len ||
					(!h.clientIDNull && len(h.clientID) > len(frame))) {
					t.Fatalf("header parse out of bounds: off=%d len=%d", off, len(frame))
				}
				putBuf(buf)
				pos += 4 + size
			}
		}
		if rest := len(data) - pos; fr.active() != (rest >= 4) {
			t.Fatalf("%d bytes left over, frame in progress=%v", rest, fr.active())
		}
		fr.reset()
	})
}

// FuzzHeader checks parseHeader alone against arbitrary frames.
func FuzzHeader(f *testing.F) {
	f.Add([]byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 1, 'c', 0})
	f.Add([]byte{0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 2, 1, 1, 'x', 'b'})
	f.Add([]byte{0, 7, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, off, err := parseHeader(frame)
		if err != nil {
			return
		}
		if off < minHeaderV0Len || off > len(frame) {
			t.Fatalf("body offset %d outside frame of %d", off, len(frame))
		}
		if h.flexible != isFlexible(h.key, h.version) {
			t.Fatal("flexible flag disagrees with the table")
		}
		if h.clientIDNull && h.clientID != nil {
			t.Fatal("null client id with bytes")
		}
	})
}
