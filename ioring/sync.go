package ioring

import (
	"io"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The sync engine: pwritev + fdatasync, for hosts where io_uring is refused.
// Each link chain runs sequentially on one goroutine (so "linked" means what
// it means to io_uring: the next op starts after this one succeeded); chains
// are independent and run concurrently on a pool of worker goroutines that
// lives as long as the engine. A batch of one chain runs on the caller's
// goroutine, saving two goroutine handoffs.

type syncEngine struct {
	jobs    chan syncJob
	batch   sync.WaitGroup // chains of the running Do not finished yet
	workers sync.WaitGroup // live workers, for Close
	iov     []unix.Iovec   // scratch for chains run by Do's goroutine
	closed  bool
}

// syncJob is the chain ops[start:end]. Sending it on a channel copies the
// struct into the channel's buffer, so dispatching does not allocate.
type syncJob struct {
	ops        []Op
	start, end int
}

// NewSync returns a pwritev+fdatasync engine running independent link chains
// on up to workers goroutines (at least 1), started now and stopped by Close.
// Safe to call from any goroutine; the Engine it returns must be used by one
// goroutine at a time.
func NewSync(workers int) Engine {
	workers = max(workers, 1)
	e := &syncEngine{jobs: make(chan syncJob, workers)}
	e.workers.Add(workers)
	for range workers {
		go e.work()
	}
	return e
}

func (e *syncEngine) Name() string { return "sync" }

// Close stops the workers. Not safe to call concurrently with Do; a second
// Close is a no-op.
func (e *syncEngine) Close() error {
	if !e.closed {
		e.closed = true
		close(e.jobs)
		e.workers.Wait()
	}
	return nil
}

func (e *syncEngine) work() {
	defer e.workers.Done()
	var iov []unix.Iovec // per worker: workers write concurrently
	for j := range e.jobs {
		iov = runChain(j.ops[j.start:j.end], iov)
		e.batch.Done()
	}
}

// Do runs ops and returns when all have completed. Called by one goroutine at
// a time, never concurrently with Close.
func (e *syncEngine) Do(ops []Op) {
	for i := range ops {
		ops[i].N, ops[i].Err = 0, nil
	}
	if e.closed {
		for i := range ops {
			ops[i].Err = errClosed
		}
		return
	}
	start := 0
	for i := range ops {
		if ops[i].Link && i < len(ops)-1 {
			continue
		}
		if start == 0 && i == len(ops)-1 {
			e.iov = runChain(ops, e.iov) // the whole batch is one chain
			return
		}
		e.batch.Add(1)
		e.jobs <- syncJob{ops: ops, start: start, end: i + 1}
		start = i + 1
	}
	e.batch.Wait()
}

// runChain runs linked ops in order; once one fails the rest get ErrCanceled.
// It returns iov, the caller's scratch, possibly grown.
func runChain(ops []Op, iov []unix.Iovec) []unix.Iovec {
	for i := range ops {
		op := &ops[i]
		if i > 0 && ops[i-1].Err != nil {
			op.Err = ErrCanceled
			continue
		}
		fd := fdOf(op.File)
		switch {
		case op.Kind != OpWrite && op.Kind != OpSync:
			op.Err = errBadKind
		case fd < 0:
			op.Err = ErrNoFd
		case op.Kind == OpWrite:
			iov, op.Err = writeAll(fd, op, iov)
		default:
			// An fdatasync error is reported, never retried (see Engine.Do).
			op.Err = unix.Fdatasync(int(fd))
		}
	}
	return iov
}

// writeAll writes op's buffers at op.Off, resubmitting the rest after a short
// write, and counts the bytes that landed in op.N.
func writeAll(fd int32, op *Op, iov []unix.Iovec) ([]unix.Iovec, error) {
	iov = iov[:0]
	for _, b := range op.Bufs {
		if len(b) > 0 {
			v := unix.Iovec{Base: unsafe.SliceData(b)}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
	}
	defer clear(iov) // don't pin the caller's buffers in the scratch
	for first := 0; first < len(iov); {
		n, errno := pwritev(fd, iov[first:min(len(iov), first+iovMax)], op.Off+op.N)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			return iov, errno
		case n == 0: // no progress: retrying could loop forever
			return iov, io.ErrShortWrite
		}
		op.N += int64(n)
		for n > 0 { // advance past the bytes that landed
			v := &iov[first]
			if n < int(v.Len) {
				v.Base = (*byte)(unsafe.Add(unsafe.Pointer(v.Base), n))
				v.SetLen(int(v.Len) - n)
				break
			}
			n -= int(v.Len)
			first++
		}
	}
	return iov, nil
}

// pwritev is the raw syscall: unix.Pwritev allocates its iovec array on every
// call, this one uses the caller's. The offset is split as the kernel's
// pos_from_hilo expects: on 64-bit platforms the high word is ignored.
func pwritev(fd int32, iov []unix.Iovec, off int64) (int, syscall.Errno) {
	const longBits = 8 * unsafe.Sizeof(uintptr(0))
	lo, hi := uintptr(off), uintptr(uint64(off)>>(longBits-1)>>1)
	n, _, errno := unix.Syscall6(unix.SYS_PWRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])),
		uintptr(len(iov)), lo, hi, 0)
	return int(n), errno
}
