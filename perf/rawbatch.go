package perf

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// RecordBatch v2 layout facts from the Kafka protocol: the CRC covers
// everything from the attributes to the end, and Length counts the bytes
// after the FirstOffset and Length fields themselves.
const (
	batchCRCStart   = 21 // firstOffset 8 + length 4 + leaderEpoch 4 + magic 1 + crc 4
	batchLengthSkip = 12 // firstOffset 8 + length 4
)

// buildBatch encodes one uncompressed v2 RecordBatch of records whose value
// sizes come from next, adding records while the whole batch stays within
// maxBytes (at least one record), so it passes a broker's max.message.bytes
// when maxBytes does. Values are sliced from payload; keys, when keys > 0,
// are drawn from rng. It returns the batch, its record count and its payload
// bytes (keys + values). The producer id is -1: raw mode is not idempotent,
// so replaying the same batch is legal and the broker assigns fresh offsets
// each time.
func buildBatch(maxBytes int, next func() int, keys int, payload []byte, rng *rand.Rand, ts time.Time) ([]byte, int, int) {
	overhead := len((&kmsg.RecordBatch{}).AppendTo(nil)) // the 61-byte batch header
	var recs []byte
	n, payloadBytes := 0, 0
	for {
		size := next()
		r := kmsg.Record{OffsetDelta: int32(n), Value: payload[:size]}
		if keys > 0 {
			r.Key = strconv.AppendInt(nil, int64(rng.IntN(keys)), 10)
		}
		// Length is a varint of what follows it; encode once with 0 (one
		// byte) to measure, then for real.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		before := len(recs)
		recs = r.AppendTo(recs)
		if n > 0 && overhead+len(recs) > maxBytes {
			recs = recs[:before]
			break
		}
		n++
		payloadBytes += len(r.Key) + size
	}
	ms := ts.UnixMilli()
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           0, // no compression, CreateTime, not transactional
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       ms,
		MaxTimestamp:         ms,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(n),
		Records:              recs,
	}
	enc := b.AppendTo(nil)
	b.Length = int32(len(enc) - batchLengthSkip)
	enc = b.AppendTo(enc[:0])
	b.CRC = int32(crc32.Checksum(enc[batchCRCStart:], crc32c))
	return b.AppendTo(enc[:0]), n, payloadBytes
}

// rawRequest is one pre-encoded Produce request: a frame header template
// (size, key, version, correlation id, client id, tags) and a body shared
// read-only by every connection. Only the correlation id changes per send,
// so each connection patches its own copy of the header.
type rawRequest struct {
	header  []byte
	body    []byte
	records int64 // records acknowledged if every partition succeeds
	bytes   int64 // their payload bytes
	perPart int64 // records per partition batch
	partB   int64 // payload bytes per partition batch
}

// correlationAt is where the correlation id sits in a request frame:
// size int32, api key int16, api version int16, then correlation id.
const correlationAt = 8

// encodeRawRequest encodes req with kmsg's RequestFormatter and splits the
// frame at the body, found by encoding the body alone: the header's layout
// depends on version and client id, and kmsg already knows it.
func encodeRawRequest(f *kmsg.RequestFormatter, req *kmsg.ProduceRequest) (hdr, body []byte, err error) {
	frame := f.AppendRequest(nil, req, 0)
	body = req.AppendTo(nil)
	hl := len(frame) - len(body)
	if hl < correlationAt+4 || string(frame[hl:]) != string(body) {
		return nil, nil, fmt.Errorf("BUG: produce frame does not end with its body")
	}
	if got := int(binary.BigEndian.Uint32(frame)); got != len(frame)-4 {
		return nil, nil, fmt.Errorf("BUG: frame size %d, want %d", got, len(frame)-4)
	}
	return frame[:hl:hl], frame[hl:], nil
}
