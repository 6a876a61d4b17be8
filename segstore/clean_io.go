package segstore

import (
	"io"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// cleanIOBuffer is the cleaner's read and write chunk, Kafka's
// log.cleaner.io.buffer.size default.
const cleanIOBuffer = 512 << 10

// segReader reads a segment's batches in order, a large chunk per read.
// The cleaner's own reads go straight to the file (vfs), not through the
// committer's engine: they are sequential and off the append path.
type segReader struct {
	s              *segment
	pos, end       int64 // next batch position; end of the data
	buf            []byte
	bufPos, bufLen int64 // file range held in buf
	read           int64 // bytes read from the file
}

func (r *segReader) reset(s *segment, pos, end int64) {
	r.s, r.pos, r.end, r.bufPos, r.bufLen = s, pos, end, 0, 0
	if r.buf == nil {
		r.buf = make([]byte, cleanIOBuffer)
	}
}

// next returns the next batch (valid until the next call), its header and
// its position; b is nil at the end. It checks the framing, not the CRC.
func (r *segReader) next() (b []byte, h batchHeader, pos int64, err error) {
	if r.pos >= r.end {
		return nil, h, r.pos, nil
	}
	pos = r.pos
	if r.end-pos < batchHeaderSize {
		return nil, h, pos, corrupt("partial batch header at position %d of %d", pos, r.end)
	}
	if err := r.fill(batchHeaderSize); err != nil {
		return nil, h, pos, err
	}
	h = parseHeader(r.buf[pos-r.bufPos:])
	size := h.Size()
	if size < batchHeaderSize || size > r.end-pos {
		return nil, h, pos, corrupt("batch at position %d claims %d bytes, %d remain", pos, size, r.end-pos)
	}
	if err := r.fill(size); err != nil {
		return nil, h, pos, err
	}
	r.pos += size
	return r.buf[pos-r.bufPos : pos-r.bufPos+size], h, pos, nil
}

// fill makes buf hold n bytes from r.pos.
func (r *segReader) fill(n int64) error {
	if r.pos >= r.bufPos && r.pos+n <= r.bufPos+r.bufLen {
		return nil
	}
	if int64(len(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	want := min(int64(len(r.buf)), r.end-r.pos)
	k, err := r.s.f.ReadAt(r.buf[:want], r.pos)
	r.read += int64(k)
	if int64(k) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return storageErr("cleaner read "+r.s.f.Name(), err)
	}
	r.bufPos, r.bufLen = r.pos, int64(k)
	return nil
}

// segWriter appends to a new file through a buffer.
type segWriter struct {
	f       vfs.File
	buf     []byte
	flushed int64 // file size written
}

func (w *segWriter) reset(f vfs.File) {
	w.f, w.flushed = f, 0
	if w.buf == nil {
		w.buf = make([]byte, 0, cleanIOBuffer)
	}
	w.buf = w.buf[:0]
}

// size is the position the next write lands at.
func (w *segWriter) size() int64 { return w.flushed + int64(len(w.buf)) }

func (w *segWriter) write(b []byte) error {
	if len(w.buf)+len(b) > cap(w.buf) {
		if err := w.flush(); err != nil {
			return err
		}
		if len(b) > cap(w.buf) {
			n, err := w.f.WriteAt(b, w.flushed)
			w.flushed += int64(n)
			return err
		}
	}
	w.buf = append(w.buf, b...)
	return nil
}

func (w *segWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.f.WriteAt(w.buf, w.flushed)
	w.flushed += int64(n)
	w.buf = w.buf[:0]
	return err
}
