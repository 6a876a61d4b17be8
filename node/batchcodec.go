package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicemq/sluice/group"
)

// The broker writes records of its own (group metadata and committed offsets
// in __consumer_offsets) and reads them back at start-up. These helpers encode
// and walk v2 RecordBatches for that; client batches never pass through here.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// buildBatch builds one uncompressed v2 RecordBatch (producer id -1) holding
// recs, all stamped with ts. Its base offset is 0: the log assigns it.
func buildBatch(recs []group.Record, ts int64) []byte {
	b := make([]byte, 61, 61+64*len(recs))
	var rec []byte
	for i, r := range recs {
		rec = rec[:0]
		rec = append(rec, 0)                   // attributes
		rec = kbin.AppendVarlong(rec, 0)       // timestamp delta
		rec = kbin.AppendVarint(rec, int32(i)) // offset delta
		rec = kbin.AppendVarintBytes(rec, r.Key)
		rec = kbin.AppendVarintBytes(rec, r.Value) // nil encodes as -1
		rec = kbin.AppendVarint(rec, 0)            // no headers
		b = kbin.AppendVarint(b, int32(len(rec)))
		b = append(b, rec...)
	}
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[12:], 0xffffffff) // leader epoch: stamped by the log
	b[16] = 2
	be.PutUint32(b[23:], uint32(len(recs)-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], ^uint64(0)) // producer id -1
	be.PutUint16(b[51:], 0xffff)     // producer epoch -1
	be.PutUint32(b[53:], 0xffffffff) // base sequence -1
	be.PutUint32(b[57:], uint32(len(recs)))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

var decompressor = kgo.DefaultDecompressor()

// walkBatches calls fn for every record of the v2 batches in buf, in offset
// order, skipping control batches. A torn batch at the end of buf is left
// for the caller (it returns the number of bytes consumed); anything
// malformed inside a whole batch is an error.
func walkBatches(buf []byte, fn func(offset int64, key, value []byte) error) (int, error) {
	be := binary.BigEndian
	used := 0
	for len(buf) >= 61 {
		size := 12 + int(int32(be.Uint32(buf[8:])))
		if size < 61 {
			return used, fmt.Errorf("batch length %d too small", size)
		}
		if size > len(buf) {
			break
		}
		b := buf[:size]
		buf, used = buf[size:], used+size
		if b[16] != 2 {
			return used, fmt.Errorf("batch magic %d", b[16])
		}
		attrs := int16(be.Uint16(b[21:]))
		if attrs&0x20 != 0 {
			continue // control batch
		}
		base := int64(be.Uint64(b[0:]))
		n := int(int32(be.Uint32(b[57:])))
		recs := b[61:]
		if codec := int8(attrs & 0x07); codec != 0 {
			out, err := decompressor.Decompress(recs, kgo.CompressionCodecType(codec))
			if err != nil {
				return used, fmt.Errorf("decompress batch at %d: %w", base, err)
			}
			recs = out
		}
		if err := walkRecords(recs, n, base, fn); err != nil {
			return used, fmt.Errorf("batch at %d: %w", base, err)
		}
	}
	return used, nil
}

func walkRecords(recs []byte, n int, base int64, fn func(offset int64, key, value []byte) error) error {
	for i := 0; i < n; i++ {
		length, m := binary.Varint(recs)
		if m <= 0 || length < 0 || int64(len(recs)-m) < length {
			return errors.New("truncated record")
		}
		r := kbin.Reader{Src: recs[m : m+int(length)]}
		recs = recs[m+int(length):]
		r.Int8()
		r.Varlong()
		delta := r.Varint()
		key := r.VarintBytes()
		value := r.VarintBytes()
		if !r.Ok() {
			return errors.New("malformed record")
		}
		if err := fn(base+int64(delta), key, value); err != nil {
			return err
		}
	}
	return nil
}
