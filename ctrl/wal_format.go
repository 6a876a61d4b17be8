package ctrl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// WAL and snapshot files are sequences of frames:
//
//	u32 length of body (big endian) | u32 CRC-32C of kind+body | u8 kind | body
//
// body is a protobuf-encoded raftpb message (raft's own codec). A frame that is cut short or fails its CRC ends the
// readable part of a file: it is the torn tail of a write that never completed an fsync, so nothing acknowledged
// is lost by dropping it and what follows.

const (
	frameEntry     byte = 1 // raftpb.Entry
	frameHardState byte = 2 // raftpb.HardState
	frameSnapshot  byte = 3 // raftpb.Snapshot
	frameHeader         = 9
	// maxFrameBody bounds one frame; a snapshot of a large cluster is the biggest thing written.
	maxFrameBody = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendFrame(dst []byte, kind byte, body []byte) []byte {
	var h [frameHeader]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(body)))
	h[8] = kind
	crc := crc32.Update(crc32.Checksum([]byte{kind}, castagnoli), castagnoli, body)
	binary.BigEndian.PutUint32(h[4:8], crc)
	return append(append(dst, h[:]...), body...)
}

type frame struct {
	kind byte
	body []byte
}

var errTornFrame = errors.New("ctrl: torn or corrupt frame")

// readFrames splits b into frames. It returns the frames before the first bad one and how many bytes were left
// unread; err says why reading stopped early (nil when b was read to its end).
func readFrames(b []byte) (fs []frame, rest int, err error) {
	for off := 0; off < len(b); {
		if len(b)-off < frameHeader {
			return fs, len(b) - off, fmt.Errorf("%w at byte %d: %d header bytes", errTornFrame, off, len(b)-off)
		}
		n := binary.BigEndian.Uint32(b[off : off+4])
		if n > maxFrameBody || uint64(n) > uint64(len(b)-off-frameHeader) {
			return fs, len(b) - off, fmt.Errorf("%w at byte %d: body length %d, %d bytes left", errTornFrame, off, n, len(b)-off-frameHeader)
		}
		kind := b[off+8]
		body := b[off+frameHeader : off+frameHeader+int(n)]
		want := binary.BigEndian.Uint32(b[off+4 : off+8])
		if got := crc32.Update(crc32.Checksum([]byte{kind}, castagnoli), castagnoli, body); got != want {
			return fs, len(b) - off, fmt.Errorf("%w at byte %d: CRC %08x, want %08x", errTornFrame, off, got, want)
		}
		fs = append(fs, frame{kind: kind, body: body})
		off += frameHeader + int(n)
	}
	return fs, 0, nil
}
