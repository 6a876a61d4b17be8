package ioring

// The uring engine: io_uring bound directly through golang.org/x/sys/unix.
//
// Ring setup. io_uring_setup with CLAMP|SUBMIT_ALL (and COOP_TASKRUN where
// the kernel has it) returns a ring fd; the SQ and CQ rings are one mmap
// (IORING_FEAT_SINGLE_MMAP is required) and the SQE array a second. The SQ
// index array is filled with the identity once, so the SQE for ring slot
// tail&mask is sqes[tail&mask]. IORING_REGISTER_PROBE must report WRITEV and
// FSYNC as supported, otherwise NewUring fails and New("auto") falls back to
// the sync engine. SUBMIT_ALL is required because without it the kernel stops
// submitting at an SQE that fails preparation and leaves the rest of that
// link chain in the SQ, where it would later run unlinked (see openRing).
//
// SQE zeroing. Every SQE is zeroed before it is filled (ring.nextSQE). The
// kernel reads every field of an SQE, and a slot is reused every `entries`
// submissions: a write landing in a slot an fsync used last would otherwise
// carry fsync_flags as rw_flags and fail with EINVAL. That is the giouring bug
// the design notes describe.
//
// Memory ordering. SQEs are written with plain stores and then published with
// an atomic store of the SQ tail (the kernel loads it with acquire). CQEs are
// read after an atomic load of the CQ tail and released with an atomic store
// of the CQ head. Go's sync/atomic operations are sequentially consistent,
// which is at least the acquire/release the ABI asks for.
//
// Completion model. Do is called by one dedicated goroutine (segstore's
// committer), so it simply blocks in io_uring_enter(to_submit, min_complete,
// GETEVENTS): one syscall both submits the batch and waits for all of it. The
// goroutine's thread sleeps in the kernel; the Go runtime's sysmon hands its P
// to other goroutines after ~20µs, so the cost is one parked OS thread per
// engine plus a P handoff and reacquisition per wait (a few µs), against an
// fdatasync that takes tens of µs (NVMe with power-loss protection) to ms.
// Alternatives were rejected: an eventfd registered with the ring and parked
// in the netpoller frees the thread but adds an eventfd read, an epoll wakeup
// and a second io_uring_enter per batch; polling the CQ burns a core (the
// broker's cores belong to the network loops); SQPOLL burns a kernel thread.
// EINTR (a signal during the wait) just repeats the wait.
//
// Short writes and cancelled fsyncs. A write that completes with fewer bytes
// than asked (RLIMIT_FSIZE, a full disk, the kernel's 2 GiB cap) is
// resubmitted for the rest: the iovecs are advanced past the bytes that landed
// and the offset moves with them. For the kernel a short write in a link chain
// is a failure, so the fsync linked after it completes with -ECANCELED: it did
// not run, and durability of the whole write has not been asked of the disk.
// So it is re-issued, linked after the resubmitted remainder, exactly as the
// caller linked it; the chain restarts at the short write once every CQE of
// the chain has arrived. That is unlike an fsync that ran and failed: its
// error is reported and never retried, since after a failed fdatasync the
// kernel may have dropped the dirty pages and a successful retry would lie.
// A write that fails reports the bytes that landed in N and the errno in Err;
// the ops linked after it get ErrCanceled.

import (
	"fmt"
	"io"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nopTag is the user_data of NOPs that replace SQEs the kernel did not take.
const nopTag = ^uint64(0)

type uring struct {
	r      *ring
	broken error  // sticky: io_uring_enter failed and the ring state is unknown
	inRing uint32 // SQEs in the SQ whose CQE is not reaped yet (<= r.entries)

	// Per-Do bookkeeping, grown to the largest batch and then reused so the
	// steady state does not allocate.
	st     []opState
	chains []chainState
	queue  []int32 // circular FIFO of chains ready to submit
	qHead  int
	qLen   int
	// iov holds every write's iovecs. Its Base pointers keep the caller's
	// buffers reachable while the kernel reads them; it is cleared after Do.
	iov []unix.Iovec
}

type opState struct {
	fd    int32 // -1: no OS descriptor
	chain int32
	iov   int32 // first iovec not written yet
	niov  int32
	rem   int64 // bytes of a write not written yet
	done  bool  // op.N/op.Err are final
}

// chainState is one link chain: ops[start:end], each linked to the next.
type chainState struct {
	start, end int32
	next       int32 // first op not submitted in the current attempt
	inflight   int32 // submitted ops whose CQE has not arrived
	failAt     int32 // op that failed, or -1
	shortAt    int32 // write that completed short, or -1
	cancelAt   int32 // first op completed with -ECANCELED, or -1
}

// NewUring sets up an io_uring engine with an SQ of entries slots (clamped to
// the kernel's maximum). It fails, so New can fall back to the sync engine, if
// io_uring is disabled or lacks IORING_OP_WRITEV, IORING_OP_FSYNC or
// IORING_SETUP_SUBMIT_ALL (Linux 5.18). Safe to call from any goroutine; the
// Engine it returns must be used by one goroutine at a time.
func NewUring(entries uint32) (Engine, error) {
	r, err := openRing(max(entries, 1))
	if err != nil {
		return nil, err
	}
	return &uring{r: r}, nil
}

func (u *uring) Name() string { return "uring" }

// Close unmaps the rings and closes the ring fd. Not safe to call concurrently
// with Do; a second Close is a no-op.
func (u *uring) Close() error {
	if u.r != nil {
		u.r.close()
		u.r = nil
	}
	return nil
}

// Do submits ops and waits until every one has completed. Called by one
// goroutine at a time, never concurrently with Close.
func (u *uring) Do(ops []Op) {
	if len(ops) == 0 {
		return
	}
	u.prepare(ops)
	switch {
	case u.r == nil:
		u.failPending(ops, errClosed)
		return
	case u.broken != nil:
		u.failPending(ops, u.broken)
		return
	}
	u.run(ops)
	if u.broken == nil {
		// Drop the references to the caller's buffers. After a broken ring the
		// kernel may still read them, so then they stay pinned here.
		clear(u.iov)
	}
	runtime.KeepAlive(ops) // the Files' descriptors must stay open until here
}

// run submits and reaps until every op of the prepared batch has a result.
func (u *uring) run(ops []Op) {
	for u.qLen > 0 || u.inRing > 0 {
		u.fill(ops)
		if u.inRing == 0 {
			continue // every queued op was resolved without the kernel
		}
		if err := u.enter(ops); err != nil {
			u.broken = err
			u.failPending(ops, err)
			return
		}
		u.reap(ops)
	}
}

// enter publishes the SQ and waits for completions: all of them when nothing
// is left to submit, else at least one so the SQ can be refilled.
func (u *uring) enter(ops []Op) error {
	r := u.r
	for {
		toSubmit := r.publish()
		minComplete := uint32(1)
		if u.qLen == 0 {
			minComplete = u.inRing
		}
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit),
			uintptr(minComplete), enterGetevents, 0, 0)
		u.reclaim(ops)
		switch errno {
		case 0:
			return nil
		case unix.EINTR, unix.EAGAIN, unix.EBUSY:
			if u.cqReady() > 0 {
				return nil
			}
			if errno != unix.EINTR {
				time.Sleep(100 * time.Microsecond) // kernel short of memory: back off
			}
		default:
			return fmt.Errorf("ioring: io_uring_enter: %w", errno)
		}
	}
}

// reclaim takes back the SQEs the kernel did not consume (it stops early when
// it cannot allocate requests). They become NOPs, and their ops go back to
// pending: the part of a chain that was consumed runs as a chain of its own,
// and the rest is resubmitted after it succeeds, which keeps link semantics.
func (u *uring) reclaim(ops []Op) {
	r := u.r
	for pos := atomic32(r.sqHead); pos != r.tail; pos++ {
		s := &r.sqes[pos&r.sqMask]
		if s.userData == nopTag {
			continue
		}
		i := int32(s.userData)
		*s = sqe{opcode: opNop, userData: nopTag}
		ci := u.st[i].chain
		c := &u.chains[ci]
		c.next = min(c.next, i)
		if c.inflight--; c.inflight == 0 {
			u.settle(ops, ci)
		}
	}
}

func (u *uring) cqReady() uint32 { return atomic32(u.r.cqTail) - atomic32(u.r.cqHead) }

// reap handles every CQE available.
func (u *uring) reap(ops []Op) {
	r := u.r
	head, tail := atomic32(r.cqHead), atomic32(r.cqTail)
	for ; head != tail; head++ {
		c := r.cqes[head&r.cqMask]
		u.inRing--
		if c.userData == nopTag {
			continue
		}
		if c.userData >= uint64(len(ops)) {
			panic("BUG: ioring: CQE user_data out of range")
		}
		u.complete(ops, int32(c.userData), c.res)
	}
	storeAtomic32(r.cqHead, head)
}

// complete records one op's CQE.
func (u *uring) complete(ops []Op, i, res int32) {
	op, st := &ops[i], &u.st[i]
	ci := st.chain
	c := &u.chains[ci]
	c.inflight--
	switch {
	case res == -int32(unix.ECANCELED):
		// Usually an earlier op in the chain failed or wrote short; settle
		// decides once the whole chain has reported.
		if c.cancelAt < 0 || i < c.cancelAt {
			c.cancelAt = i
		}
	case res < 0:
		st.done, op.Err, c.failAt = true, syscall.Errno(-res), i
	case op.Kind == OpWrite:
		op.N += int64(res)
		u.advance(st, int64(res))
		switch {
		case st.rem == 0:
			st.done = true
		case res == 0: // no progress: resubmitting could loop forever
			st.done, op.Err, c.failAt = true, io.ErrShortWrite, i
		default:
			c.shortAt = i
		}
	default:
		st.done = true
	}
	if c.inflight == 0 {
		u.settle(ops, ci)
	}
}

// failPending gives every op that has no result yet err.
func (u *uring) failPending(ops []Op, err error) {
	for i := range ops {
		if !u.st[i].done {
			ops[i].Err, u.st[i].done = err, true
		}
	}
	u.qLen = 0
}
