package netpoll

import "io"

// File is what a zero-copy file range reads from. *os.File and the storage
// seam's vfs.File both satisfy it.
//
// Fd is used for sendfile(2); a File without an OS descriptor returns
// ^uintptr(0) (vfs.InvalidFd) and its range is copied through ReadAt instead.
// The File must stay open until the Part's release callback runs.
type File interface {
	io.ReaderAt
	Fd() uintptr
}

// invalidFd is vfs.InvalidFd, repeated here so netpoll does not import the
// storage layer.
const invalidFd = ^uintptr(0)

// Part is one piece of a response body: either bytes or a range of a file.
// Build Parts with Bytes and FileRange; the zero Part is an empty byte part.
//
// A Part is a value; its methods and the constructors are pure and safe for
// concurrent use. Once passed to Respond it belongs to netpoll until its
// release callback (if any) runs.
type Part struct {
	b       []byte
	f       File
	off, n  int64
	release func()
	// copyRest is set on the loop when sendfile refused this file (EINVAL,
	// ENOSYS, EOPNOTSUPP: a file system without splice support); the rest of
	// the range goes through the copy path.
	copyRest bool
}

// Bytes returns a Part that writes b. netpoll does not copy b: the caller must
// not modify it until the Part is released (see WithRelease) or, without a
// release callback, ever again.
func Bytes(b []byte) Part { return Part{b: b} }

// FileRange returns a Part that writes n bytes of f starting at off, with
// sendfile(2) when possible. If the file turns out to be shorter than off+n
// when the range is written, the connection is closed: the size prefix already
// promised those bytes. FileRange panics if off or n is negative.
func FileRange(f File, off, n int64) Part {
	if off < 0 || n < 0 {
		panic("netpoll: FileRange with negative offset or length")
	}
	return Part{f: f, off: off, n: n}
}

// WithRelease returns p with fn attached. fn runs exactly once, on the event
// loop goroutine, after the part has been handed to the kernel or when the
// connection closes before that; it must not block. Typical uses: unpin a log
// segment, return a buffer to a pool.
func (p Part) WithRelease(fn func()) Part {
	p.release = fn
	return p
}

// Len is the number of bytes p puts on the wire.
func (p Part) Len() int64 {
	if p.f != nil {
		return p.n
	}
	return int64(len(p.b))
}

// IsFile reports whether p is a file range.
func (p Part) IsFile() bool { return p.f != nil }

func releaseParts(parts []Part) {
	for i := range parts {
		if fn := parts[i].release; fn != nil {
			parts[i].release = nil
			fn()
		}
	}
}
