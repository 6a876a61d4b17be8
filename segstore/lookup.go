package segstore

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
)

var decompressor = kgo.DefaultDecompressor()

// OffsetForTime answers ListOffsets by timestamp: the first offset whose
// record timestamp is >= ts, and that timestamp. found is false when no record
// is that new (Kafka answers offset -1). Safe for concurrent use.
func (l *Log) OffsetForTime(ts int64) (offset, timestamp int64, found bool, err error) {
	l.mu.Lock()
	if l.err != nil {
		defer l.mu.Unlock()
		return 0, 0, false, l.err
	}
	var s *segment
	for _, c := range l.segs {
		if c.maxTs >= ts && c.size > 0 {
			s = c
			break
		}
	}
	if s == nil {
		l.mu.Unlock()
		return -1, -1, false, nil
	}
	rel, _ := s.ix.lookupTime(ts)
	start := int64(s.ix.lookup(rel))
	end, logStart := s.size, l.startOffset
	s.acquire()
	l.mu.Unlock()
	defer s.release()

	var pos, size int64 = -1, 0
	err = s.scan(start, end, func(p int64, h *batchHeader) bool {
		if h.MaxTimestamp >= ts && h.LastOffset() >= logStart && h.RecordCount > 0 { // compaction empties batches
			pos, size = p, h.Size()
			return false
		}
		return true
	})
	if err != nil {
		return 0, 0, false, storageErr("time lookup", err)
	}
	if pos < 0 {
		return -1, -1, false, nil
	}
	return s.recordAt(pos, size, func(o, t int64) bool { return t >= ts && o >= logStart })
}

// MaxTimestamp answers ListOffsets with timestamp -3 (KIP-734): the offset
// and timestamp of the record with the largest timestamp, the first such on
// ties. found is false for an empty log. Safe for concurrent use.
func (l *Log) MaxTimestamp() (offset, timestamp int64, found bool, err error) {
	l.mu.Lock()
	if l.err != nil {
		defer l.mu.Unlock()
		return 0, 0, false, l.err
	}
	var s *segment
	for _, c := range l.segs {
		if c.size > 0 && c.maxTs >= 0 && (s == nil || c.maxTs > s.maxTs) {
			s = c
		}
	}
	if s == nil {
		l.mu.Unlock()
		return -1, -1, false, nil
	}
	want, maxTs := s.base+int64(s.relOfMaxTs), s.maxTs
	start := int64(s.ix.lookup(s.relOfMaxTs))
	end := s.size
	s.acquire()
	l.mu.Unlock()
	defer s.release()

	pos, h, ok, err := s.findFrom(want, start, end)
	if err != nil || !ok {
		return 0, 0, false, storageErr("max timestamp lookup", fmt.Errorf("batch of offset %d: %v", want, err))
	}
	return s.recordAt(pos, h.Size(), func(_, t int64) bool { return t == maxTs })
}

// findFrom scans from start for the batch holding offset.
func (s *segment) findFrom(offset, start, end int64) (pos int64, h batchHeader, found bool, err error) {
	err = s.scan(start, end, func(p int64, bh *batchHeader) bool {
		if bh.LastOffset() >= offset {
			pos, h, found = p, *bh, true
			return false
		}
		return true
	})
	return pos, h, found, err
}

// recordAt reads the batch at pos and returns the first record for which
// match(offset, timestamp) holds.
func (s *segment) recordAt(pos, size int64, match func(offset, ts int64) bool) (int64, int64, bool, error) {
	b := make([]byte, size)
	if _, err := s.f.ReadAt(b, pos); err != nil {
		return 0, 0, false, storageErr("read batch", err)
	}
	h := parseHeader(b)
	var off, ts int64
	found := false
	err := forEachRecord(b, &h, func(o, t int64) bool {
		if match(o, t) {
			off, ts, found = o, t, true
			return false
		}
		return true
	})
	if err != nil {
		return 0, 0, false, storageErr("decode batch", err)
	}
	return off, ts, found, nil
}

// forEachRecord calls fn with each record's offset and timestamp, inflating
// compressed batches. LogAppendTime batches carry the broker time for all
// records in maxTimestamp.
func forEachRecord(b []byte, h *batchHeader, fn func(offset, ts int64) bool) error {
	data := b[batchHeaderSize:]
	if c := h.Compression(); c != 0 {
		var err error
		data, err = decompressor.Decompress(data, kgo.CompressionCodecType(c))
		if err != nil {
			return err
		}
	}
	logAppend := h.Attributes&attrTimestampType != 0
	for i := int32(0); i < h.RecordCount && len(data) > 0; i++ {
		l, k := kbin.Varint(data)
		if k <= 0 || l < 1 || int(l) > len(data)-k {
			return invalid("record %d: bad length", i)
		}
		rec := data[k : k+int(l)]
		data = data[k+int(l):]
		tsDelta, k1 := kbin.Varlong(rec[1:])
		if k1 <= 0 {
			return invalid("record %d: bad timestamp", i)
		}
		od, k2 := kbin.Varint(rec[1+k1:])
		if k2 <= 0 {
			return invalid("record %d: bad offset delta", i)
		}
		ts := h.BaseTimestamp + tsDelta
		if logAppend {
			ts = h.MaxTimestamp
		}
		if !fn(h.BaseOffset+int64(od), ts) {
			return nil
		}
	}
	return nil
}
