package segstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Byte layout of a v2 RecordBatch header (KIP-98). Offsets and the leader
// epoch sit before the CRC and are not covered by it, which is why the broker
// can assign offsets and stamp the epoch in place without re-checksumming.
const (
	offBaseOffset     = 0
	offBatchLength    = 8
	offLeaderEpoch    = 12
	offMagic          = 16
	offCRC            = 17
	offAttributes     = 21
	offLastOffsetDelt = 23
	offBaseTimestamp  = 27
	offMaxTimestamp   = 35
	offProducerID     = 43
	offProducerEpoch  = 51
	offBaseSequence   = 53
	offRecordCount    = 57
	batchHeaderSize   = 61

	// logOverhead is baseOffset + batchLength: the bytes not counted by batchLength.
	logOverhead = 12

	attrCompressionMask = 0x07
	attrTimestampType   = 0x08 // set: LogAppendTime
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned for invalid input. The node maps ErrCorruptBatch to
// CORRUPT_MESSAGE and ErrInvalidRecord to INVALID_RECORD.
var (
	ErrCorruptBatch  = errors.New("corrupt record batch")
	ErrInvalidRecord = errors.New("invalid record")
)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptBatch}, args...)...)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRecord}, args...)...)
}

// batchHeader is the fixed part of a RecordBatch, decoded.
type batchHeader struct {
	BaseOffset    int64
	Length        int32 // bytes after the length field
	LeaderEpoch   int32
	Magic         int8
	CRC           uint32
	Attributes    int16
	LastOffDelta  int32
	BaseTimestamp int64
	MaxTimestamp  int64
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	RecordCount   int32
}

// Size is the whole batch's size on disk.
func (h *batchHeader) Size() int64 { return int64(h.Length) + logOverhead }

// LastOffset is the offset of the batch's last record.
func (h *batchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffDelta) }

// Compression is the codec number (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func (h *batchHeader) Compression() int8 { return int8(h.Attributes & attrCompressionMask) }

func parseHeader(b []byte) (h batchHeader) {
	be := binary.BigEndian
	h.BaseOffset = int64(be.Uint64(b[offBaseOffset:]))
	h.Length = int32(be.Uint32(b[offBatchLength:]))
	h.LeaderEpoch = int32(be.Uint32(b[offLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	h.CRC = be.Uint32(b[offCRC:])
	h.Attributes = int16(be.Uint16(b[offAttributes:]))
	h.LastOffDelta = int32(be.Uint32(b[offLastOffsetDelt:]))
	h.BaseTimestamp = int64(be.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(be.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(be.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(be.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(be.Uint32(b[offBaseSequence:]))
	h.RecordCount = int32(be.Uint32(b[offRecordCount:]))
	return h
}

// BatchInfo describes one validated batch of an append.
type BatchInfo struct {
	BaseOffset   int64
	LastOffset   int64
	MaxTimestamp int64
	Records      int32
	Size         int32
}

// checkFrame checks what every v2 batch, produced or stored, must satisfy:
// a whole header, a length field that matches, magic 2 and the CRC32C.
func checkFrame(b []byte) (batchHeader, error) {
	if len(b) < batchHeaderSize {
		return batchHeader{}, corrupt("batch of %d bytes is shorter than the %d-byte header", len(b), batchHeaderSize)
	}
	h := parseHeader(b)
	if h.Size() != int64(len(b)) {
		return h, corrupt("batch length field %d does not match %d bytes", h.Length, len(b)-logOverhead)
	}
	if h.Magic != 2 {
		return h, corrupt("magic %d, only v2 record batches (magic 2) are accepted", h.Magic)
	}
	if got := crcOf(b); got != h.CRC {
		return h, corrupt("crc32c mismatch: header says %08x, data has %08x", h.CRC, got)
	}
	return h, nil
}

// validateBatch checks one complete batch (b is exactly the batch): size
// fields, magic 2, CRC32C, record count against lastOffsetDelta, and for
// uncompressed batches that the records' framing adds up to the count.
// Compressed payloads are not inflated here (that would cost more CPU than
// the whole append path); their integrity rests on the CRC.
func validateBatch(b []byte) (batchHeader, error) {
	h, err := checkFrame(b)
	if err != nil {
		return h, err
	}
	if h.RecordCount <= 0 {
		return h, invalid("batch has %d records", h.RecordCount)
	}
	if h.LastOffDelta != h.RecordCount-1 {
		return h, invalid("lastOffsetDelta %d does not match record count %d", h.LastOffDelta, h.RecordCount)
	}
	if h.Compression() > 4 {
		return h, invalid("unknown compression codec %d", h.Compression())
	}
	if h.Compression() == 0 {
		if err := walkRecords(b[batchHeaderSize:], h.RecordCount); err != nil {
			return h, err
		}
	}
	return h, nil
}

// walkRecords checks that data holds exactly n length-prefixed records with
// consecutive offset deltas, without decoding keys or values.
func walkRecords(data []byte, n int32) error {
	for i := int32(0); i < n; i++ {
		l, k := kbin.Varint(data)
		if k <= 0 || l < 0 || int(l) > len(data)-k {
			return invalid("record %d: bad length", i)
		}
		rec := data[k : k+int(l)]
		data = data[k+int(l):]
		// attributes int8, timestampDelta varlong, offsetDelta varint
		if len(rec) < 1 {
			return invalid("record %d: empty", i)
		}
		_, k1 := kbin.Varlong(rec[1:])
		if k1 <= 0 {
			return invalid("record %d: bad timestamp delta", i)
		}
		od, k2 := kbin.Varint(rec[1+k1:])
		if k2 <= 0 || od != i {
			return invalid("record %d: offset delta %d", i, od)
		}
	}
	if len(data) != 0 {
		return invalid("%d bytes after the last of %d records", len(data), n)
	}
	return nil
}

// splitBatches validates every batch in buf (one or more concatenated v2
// batches, as a Produce request carries them) and calls each for every one.
// The header goes by value: a pointer would escape to the heap through the
// callback and cost an allocation per append.
func splitBatches(buf []byte, each func(b []byte, h batchHeader) error) error {
	if len(buf) == 0 {
		return invalid("no record batches")
	}
	for len(buf) > 0 {
		if len(buf) < logOverhead {
			return corrupt("%d trailing bytes are not a batch", len(buf))
		}
		size := int64(int32(binary.BigEndian.Uint32(buf[offBatchLength:]))) + logOverhead
		if size < batchHeaderSize || size > int64(len(buf)) {
			return corrupt("batch claims %d bytes, %d remain", size, len(buf))
		}
		b := buf[:size]
		h, err := validateBatch(b)
		if err != nil {
			return err
		}
		if err := each(b, h); err != nil {
			return err
		}
		buf = buf[size:]
	}
	return nil
}

// stampOffsets rewrites baseOffset and partitionLeaderEpoch in place. Neither
// is covered by the CRC.
func stampOffsets(b []byte, base int64, epoch int32) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// stampLogAppendTime sets the timestamp type to LogAppendTime and the max
// timestamp to now, as Kafka does for topics with
// message.timestamp.type=LogAppendTime. The attributes are under the CRC, so
// it is recomputed.
func stampLogAppendTime(b []byte, now int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:]) | attrTimestampType
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offMaxTimestamp:], uint64(now))
	be.PutUint32(b[offCRC:], crcOf(b))
}

// crcOf is the batch CRC32C: it covers everything from the attributes on.
func crcOf(b []byte) uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }
