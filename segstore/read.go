package segstore

import (
	"fmt"
	"io"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// Slice is a byte range of a segment file holding whole batches. It pins the
// segment: the file stays open until Release, even if retention deletes it
// meanwhile.
type Slice struct {
	File vfs.File
	Pos  int64
	Len  int64
	seg  *segment
}

// Release unpins the segment. Call exactly once per non-empty Slice; safe
// from any goroutine.
func (s *Slice) Release() {
	if s.seg != nil {
		s.seg.release()
		s.seg = nil
	}
}

// CopyTo copies the slice into p, which must hold Len bytes (the copy path,
// for TLS or tests).
func (s *Slice) CopyTo(p []byte) (int, error) {
	if int64(len(p)) < s.Len {
		return 0, io.ErrShortBuffer
	}
	n, err := s.File.ReadAt(p[:s.Len], s.Pos)
	if err == io.EOF && int64(n) == s.Len {
		err = nil
	}
	return n, err
}

// Read returns the bytes a fetch at offset gets: whole batches from the one
// holding offset, as many as fit in maxBytes (but at least that first one,
// KIP-74), and not past bound — the caller's high watermark; a negative bound means the LEO.
// Reading exactly at the bound returns an empty Slice. Offsets below the log
// start or past the bound give ErrOffsetOutOfRange. Safe for concurrent use;
// the file I/O happens outside the log's lock.
func (l *Log) Read(offset, maxBytes, bound int64) (Slice, error) {
	l.mu.Lock()
	if l.err != nil {
		defer l.mu.Unlock()
		return Slice{}, l.err
	}
	if bound < 0 || bound > l.leo {
		bound = l.leo
	}
	if offset < l.startOffset || offset > bound {
		defer l.mu.Unlock()
		return Slice{}, fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, l.startOffset, bound)
	}
	if offset == bound {
		l.mu.Unlock()
		return Slice{}, nil
	}
	// The segment holding offset: the last with base <= offset whose data
	// reaches past it. Compaction leaves gaps, so that may be a later one
	// (and a segment it emptied holds nothing at all).
	i := len(l.segs) - 1
	for i > 0 && l.segs[i].base > offset {
		i--
	}
	for i < len(l.segs)-1 && (l.segs[i].next <= offset || l.segs[i].size == 0) {
		i++
	}
	s := l.segs[i]
	s.acquire()
	end := s.size
	boundInSeg := bound < s.next
	startScan := int64(s.ix.lookup(uint32(max(offset-s.base, 0))))
	boundScan := int64(s.ix.lookup(uint32(max(bound-s.base, 0))))
	l.mu.Unlock()

	sl, err := s.slice(l, offset, maxBytes, bound, boundInSeg, startScan, boundScan, end)
	if err != nil || sl.Len == 0 {
		s.release()
		if err != nil {
			return Slice{}, storageErr("read", err)
		}
	}
	return sl, nil
}

func (s *segment) slice(l *Log, offset, maxBytes, bound int64, boundInSeg bool, startScan, boundScan, end int64) (Slice, error) {
	if boundInSeg {
		// The bound is a batch boundary below the segment end: find where.
		err := s.scan(boundScan, end, func(p int64, h *batchHeader) bool {
			if h.BaseOffset >= bound {
				end = p
				return false
			}
			return true
		})
		if err != nil {
			return Slice{}, err
		}
	}
	var pos, first int64 = -1, 0
	err := s.scan(startScan, end, func(p int64, h *batchHeader) bool {
		if h.LastOffset() >= offset {
			pos, first = p, h.Size()
			return false
		}
		return true
	})
	if err != nil {
		return Slice{}, err
	}
	if pos < 0 {
		return Slice{}, nil
	}
	limit := pos + max(maxBytes, first)
	if limit < end {
		// Cut at the last whole batch within limit. The index names batch
		// starts, so scan from the one nearest below the limit instead of
		// reading every header from pos.
		l.mu.Lock()
		from := max(s.ix.floorPos(limit), pos)
		l.mu.Unlock()
		newEnd := from
		err := s.scan(from, end, func(p int64, h *batchHeader) bool {
			if p+h.Size() > limit {
				return false
			}
			newEnd = p + h.Size()
			return true
		})
		if err != nil {
			return Slice{}, err
		}
		end = max(newEnd, pos+first)
	}
	return Slice{File: s.f, Pos: pos, Len: end - pos, seg: s}, nil
}

// ReadCopy is Read followed by a copy into dst (grown as needed); the copy
// path for transports that cannot sendfile. Safe for concurrent use.
func (l *Log) ReadCopy(offset, maxBytes, bound int64, dst []byte) ([]byte, error) {
	sl, err := l.Read(offset, maxBytes, bound)
	if err != nil || sl.Len == 0 {
		return dst[:0], err
	}
	defer sl.Release()
	if int64(cap(dst)) < sl.Len {
		dst = make([]byte, sl.Len)
	}
	dst = dst[:sl.Len]
	if _, err := sl.CopyTo(dst); err != nil {
		return dst[:0], storageErr("read", err)
	}
	return dst, nil
}
