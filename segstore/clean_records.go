package segstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The record walker: the cleaner and the keyless-record check on compacted
// logs look inside records (key, value null or not, offset delta), which the
// append path never does. Everything is bounds-checked: stored data is
// CRC-checked first, but a producer's batch is only CRC-checked, and a CRC
// says nothing about a client that encoded garbage correctly.

// record is one v2 record, undecoded except for what cleaning needs.
type record struct {
	raw      []byte // the whole record, length prefix included
	tsDelta  int64
	offDelta int32
	key      []byte // nil when hasKey is false
	hasKey   bool
	hasValue bool // false: a tombstone
}

// nextRecord parses the record at the start of data and returns it and the
// bytes it takes.
func nextRecord(data []byte) (record, int, error) {
	l, k := kbin.Varint(data)
	if k <= 0 || l <= 0 || int(l) > len(data)-k {
		return record{}, 0, invalid("bad record length")
	}
	n := k + int(l)
	r := record{raw: data[:n]}
	body := data[k:n]
	p := 1 // attributes
	var m int
	if r.tsDelta, m = kbin.Varlong(body[p:]); m <= 0 {
		return record{}, 0, invalid("bad record timestamp delta")
	}
	p += m
	if r.offDelta, m = kbin.Varint(body[p:]); m <= 0 {
		return record{}, 0, invalid("bad record offset delta")
	}
	p += m
	key, p, hasKey, err := nullableBytes(body, p, "key")
	if err != nil {
		return record{}, 0, err
	}
	r.key, r.hasKey = key, hasKey
	if _, p, r.hasValue, err = nullableBytes(body, p, "value"); err != nil {
		return record{}, 0, err
	}
	headers, m := kbin.Varint(body[p:])
	if m <= 0 || headers < 0 || int(headers) > (len(body)-p-m)/2 {
		return record{}, 0, invalid("bad record header count")
	}
	p += m
	for i := int32(0); i < headers; i++ {
		var ok bool
		if _, p, ok, err = nullableBytes(body, p, "header key"); err != nil {
			return record{}, 0, err
		} else if !ok {
			return record{}, 0, invalid("null record header key")
		}
		if _, p, _, err = nullableBytes(body, p, "header value"); err != nil {
			return record{}, 0, err
		}
	}
	if p != len(body) {
		return record{}, 0, invalid("record has %d bytes after its headers", len(body)-p)
	}
	return r, n, nil
}

// nullableBytes reads a varint-length-prefixed byte string at body[p:]
// (length -1: null).
func nullableBytes(body []byte, p int, what string) ([]byte, int, bool, error) {
	l, m := kbin.Varint(body[p:])
	if m <= 0 || l < -1 || int(l) > len(body)-p-m {
		return nil, 0, false, invalid("bad record %s length", what)
	}
	p += m
	if l < 0 {
		return nil, p, false, nil
	}
	return body[p : p+int(l)], p + int(l), true, nil
}

// recordsOf returns a batch's record bytes, inflated when compressed.
func recordsOf(b []byte, h *batchHeader) ([]byte, error) {
	data := b[batchHeaderSize:]
	if c := h.Compression(); c != 0 {
		out, err := decompressor.Decompress(data, kgo.CompressionCodecType(c))
		if err != nil {
			return nil, corrupt("batch at offset %d: decompress: %v", h.BaseOffset, err)
		}
		return out, nil
	}
	return data, nil
}

// walkBatchRecords calls fn for each record of the batch, in order, checking
// that offset deltas rise and stay within lastOffsetDelta (compaction leaves
// gaps, so they need not be consecutive) and that the count matches.
func walkBatchRecords(data []byte, h *batchHeader, fn func(r *record) error) error {
	prev := int32(-1)
	for i := int32(0); i < h.RecordCount; i++ {
		r, n, err := nextRecord(data)
		if err != nil {
			return fmt.Errorf("batch at offset %d, record %d: %w", h.BaseOffset, i, err)
		}
		if r.offDelta <= prev || r.offDelta > h.LastOffDelta {
			return invalid("batch at offset %d, record %d: offset delta %d after %d, last %d",
				h.BaseOffset, i, r.offDelta, prev, h.LastOffDelta)
		}
		prev = r.offDelta
		data = data[n:]
		if err := fn(&r); err != nil {
			return err
		}
	}
	if len(data) != 0 {
		return invalid("batch at offset %d: %d bytes after its %d records", h.BaseOffset, len(data), h.RecordCount)
	}
	return nil
}

// validateStored checks a batch read back from a segment. Besides what
// validateBatch checks, it accepts what compaction leaves: records with
// gaps between their offset deltas and batches with no records at all
// (their offsets and producer sequence kept, KAFKA-5443).
func validateStored(b []byte) (batchHeader, error) {
	h, err := checkFrame(b)
	if err != nil {
		return h, err
	}
	if h.RecordCount < 0 || h.LastOffDelta < 0 || h.LastOffDelta < h.RecordCount-1 {
		return h, corrupt("batch at offset %d: %d records, lastOffsetDelta %d", h.BaseOffset, h.RecordCount, h.LastOffDelta)
	}
	if h.Compression() > 4 {
		return h, corrupt("unknown compression codec %d", h.Compression())
	}
	if h.RecordCount == 0 && len(b) != batchHeaderSize {
		return h, corrupt("empty batch at offset %d carries %d bytes", h.BaseOffset, len(b)-batchHeaderSize)
	}
	if h.Compression() == 0 {
		if err := walkBatchRecords(b[batchHeaderSize:], &h, func(*record) error { return nil }); err != nil {
			return h, err
		}
	}
	return h, nil
}

// requireKeys refuses a produce request to a compacted log that holds a
// record without a key, as Kafka does ("Compacted topic cannot accept
// message without key"): the cleaner could never deduplicate it. buf has
// passed splitBatches.
func requireKeys(buf []byte, topic string, partition int32) error {
	for len(buf) > 0 {
		h := parseHeader(buf)
		b := buf[:h.Size()]
		buf = buf[h.Size():]
		if h.Attributes&attrControl != 0 {
			continue
		}
		data, err := recordsOf(b, &h)
		if err != nil {
			return err
		}
		err = walkBatchRecords(data, &h, func(r *record) error {
			if !r.hasKey {
				return invalid("compacted topic cannot accept a record without a key in topic partition %s-%d", topic, partition)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// compressors are kgo's, one per codec, made on first use.
var (
	compressorsOnce sync.Once
	compressors     [5]kgo.Compressor
)

func compressorFor(codec int8) (kgo.Compressor, error) {
	compressorsOnce.Do(func() {
		for i, c := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(),
			kgo.Lz4Compression(), kgo.ZstdCompression()} {
			compressors[i+1], _ = kgo.DefaultCompressor(c)
		}
	})
	if codec < 1 || codec > 4 || compressors[codec] == nil {
		return nil, fmt.Errorf("no compressor for codec %d", codec)
	}
	return compressors[codec], nil
}

// batchBuilder rewrites batches; its buffers are reused across batches.
type batchBuilder struct {
	recs []byte       // kept records, uncompressed
	zbuf bytes.Buffer // compression output
	out  []byte       // the rebuilt batch
}

// rebuild returns b with only the records keep accepts, kept, and the
// number kept. When every record stays, out is b itself; when none does,
// out is nil. A rebuilt batch keeps its base offset, lastOffsetDelta,
// base timestamp, producer id, epoch and base sequence, leader epoch and
// attributes; each kept record keeps its bytes (and so its offset and
// timestamp deltas); record count, max timestamp (CreateTime), length and
// CRC are recomputed, and the records re-compressed with the same codec.
// out is valid until the next call.
func (bb *batchBuilder) rebuild(b []byte, h *batchHeader, keep func(r *record) bool) (out []byte, kept int32, err error) {
	data, err := recordsOf(b, h)
	if err != nil {
		return nil, 0, err
	}
	bb.recs = bb.recs[:0]
	maxTs := int64(-1)
	err = walkBatchRecords(data, h, func(r *record) error {
		if keep(r) {
			bb.recs = append(bb.recs, r.raw...)
			kept++
			maxTs = max(maxTs, h.BaseTimestamp+r.tsDelta)
		}
		return nil
	})
	if err != nil || kept == h.RecordCount {
		return b, kept, err
	}
	if kept == 0 {
		return nil, 0, nil
	}
	payload := bb.recs
	if c := h.Compression(); c != 0 {
		comp, err := compressorFor(c)
		if err != nil {
			return nil, 0, err
		}
		bb.zbuf.Reset()
		z, typ := comp.Compress(&bb.zbuf, bb.recs)
		if int8(typ) != c {
			return nil, 0, fmt.Errorf("re-compress batch at offset %d with codec %d failed", h.BaseOffset, c)
		}
		payload = z
	}
	if h.Attributes&attrTimestampType != 0 {
		maxTs = h.MaxTimestamp // LogAppendTime: the broker's time for every record
	}
	bb.out = append(append(bb.out[:0], b[:batchHeaderSize]...), payload...)
	finishHeader(bb.out, kept, maxTs, h.Attributes)
	return bb.out, kept, nil
}

// emptyBatch returns the header of b with no records: what is left of the
// last batch of a producer whose records all went, so that its offsets and
// sequence numbers survive for the producer-state replay. Codec none, as
// Kafka writes it. out is valid until the next call.
func (bb *batchBuilder) emptyBatch(b []byte, h *batchHeader) []byte {
	bb.out = append(bb.out[:0], b[:batchHeaderSize]...)
	finishHeader(bb.out, 0, h.MaxTimestamp, h.Attributes&^attrCompressionMask)
	return bb.out
}

// finishHeader sets the fields a rewrite changes and the CRC.
func finishHeader(b []byte, count int32, maxTs int64, attrs int16) {
	be := binary.BigEndian
	be.PutUint32(b[offBatchLength:], uint32(len(b)-logOverhead))
	be.PutUint16(b[offAttributes:], uint16(attrs))
	be.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
	be.PutUint32(b[offRecordCount:], uint32(count))
	be.PutUint32(b[offCRC:], crcOf(b))
}
