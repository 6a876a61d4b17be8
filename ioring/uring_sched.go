package ioring

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file turns a batch into SQEs: chains are queued FIFO and submitted as
// linked runs of SQEs while they fit in the ring.

// prepare resets the ops' results and builds the per-op and per-chain state
// and the iovecs, reusing the engine's slices.
func (u *uring) prepare(ops []Op) {
	if cap(u.st) < len(ops) {
		u.st = make([]opState, len(ops))
	}
	u.st = u.st[:len(ops)]
	u.chains = u.chains[:0]
	u.iov = u.iov[:0]
	start := int32(0)
	for i := range ops {
		op := &ops[i]
		op.N, op.Err = 0, nil
		st := &u.st[i]
		*st = opState{fd: fdOf(op.File), chain: int32(len(u.chains)), iov: int32(len(u.iov))}
		if op.Kind == OpWrite {
			for _, b := range op.Bufs {
				if len(b) == 0 {
					continue // an empty iovec is legal, but its Base may be nil
				}
				v := unix.Iovec{Base: unsafe.SliceData(b)}
				v.SetLen(len(b))
				u.iov = append(u.iov, v)
				st.rem += int64(len(b))
			}
			st.niov = int32(len(u.iov)) - st.iov
		}
		if !op.Link || i == len(ops)-1 {
			u.chains = append(u.chains, chainState{start: start, end: int32(i + 1), next: start,
				failAt: -1, shortAt: -1, cancelAt: -1})
			start = int32(i + 1)
		}
	}
	if cap(u.queue) < len(u.chains) {
		u.queue = make([]int32, len(u.chains))
	}
	u.queue = u.queue[:cap(u.queue)]
	u.qHead, u.qLen = 0, 0
	for ci := range u.chains {
		u.enqueue(int32(ci))
	}
}

// enqueue appends chain ci to the ready queue. A chain is queued at most
// once at a time, so the queue never holds more than len(chains).
func (u *uring) enqueue(ci int32) {
	u.queue[(u.qHead+u.qLen)%len(u.queue)] = ci
	u.qLen++
}

func (u *uring) dequeue() {
	u.qHead = (u.qHead + 1) % len(u.queue)
	u.qLen--
}

// resolvable reports whether op i completes without the kernel: an op on a
// file without descriptor or of unknown kind fails, an empty write succeeds.
func (u *uring) resolvable(ops []Op, i int32) (bool, error) {
	switch {
	case ops[i].Kind != OpWrite && ops[i].Kind != OpSync:
		return true, errBadKind
	case u.st[i].fd < 0:
		return true, ErrNoFd
	case ops[i].Kind == OpWrite && u.st[i].rem == 0:
		return true, nil
	}
	return false, nil
}

// fill moves queued chains into the SQ while they fit. A chain that does not
// fit waits for completions to free room, unless it is longer than the whole
// ring: then it is submitted in segments, each starting only once the one
// before it succeeded, which is what the link asks for.
func (u *uring) fill(ops []Op) {
	for u.qLen > 0 {
		ci := u.queue[u.qHead]
		c := &u.chains[ci]
		for c.next < c.end {
			ok, err := u.resolvable(ops, c.next)
			if !ok {
				break
			}
			u.st[c.next].done = true
			if err != nil {
				ops[c.next].Err, c.failAt = err, c.next
				u.cancelAfter(ops, c, c.next)
				break
			}
			c.next++
		}
		if c.next == c.end {
			u.dequeue()
			continue
		}
		free := int32(u.r.entries - u.inRing)
		seg := c.next
		for seg < c.end && seg-c.next < free {
			if ok, _ := u.resolvable(ops, seg); ok {
				break
			}
			seg++
		}
		cut := seg < c.end && seg-c.next == free
		if free == 0 || cut && u.inRing > 0 {
			return
		}
		u.dequeue()
		for i := c.next; i < seg; i++ {
			u.push(ops, i, i+1 < seg)
		}
		c.inflight, c.next = seg-c.next, seg
	}
}

// push writes op i's SQE. link is set on all but the last SQE of a segment,
// so a segment never dangles a link into SQEs that are not part of it.
func (u *uring) push(ops []Op, i int32, link bool) {
	op, st := &ops[i], &u.st[i]
	s := u.r.nextSQE()
	s.fd = st.fd
	s.userData = uint64(i)
	if link {
		s.flags = sqeIOLink
	}
	switch op.Kind {
	case OpWrite:
		s.opcode = opWritev
		s.off = uint64(op.Off + op.N)
		s.addr = uint64(uintptr(unsafe.Pointer(&u.iov[st.iov])))
		// Past UIO_MAXIOV the kernel says EINVAL; capping makes it a short
		// write, resubmitted for the rest.
		s.len = uint32(min(st.niov, iovMax))
	case OpSync:
		s.opcode = opFsync
		s.opFlags = fsyncDatasync
	}
	u.inRing++
}

// advance moves a write's iovec window past n bytes that landed.
func (u *uring) advance(st *opState, n int64) {
	st.rem -= n
	for n > 0 {
		v := &u.iov[st.iov]
		if n < int64(v.Len) {
			v.Base = (*byte)(unsafe.Add(unsafe.Pointer(v.Base), n))
			v.SetLen(int(int64(v.Len) - n))
			return
		}
		n -= int64(v.Len)
		st.iov++
		st.niov--
	}
}

// settle decides what happens to a chain once none of its ops is in flight.
func (u *uring) settle(ops []Op, ci int32) {
	c := &u.chains[ci]
	switch {
	case c.failAt >= 0:
		u.cancelAfter(ops, c, c.failAt)
	case c.shortAt >= 0:
		// Restart at the short write; the ops after it got -ECANCELED without
		// running (an fsync among them is re-issued, see the file comment).
		c.next, c.shortAt, c.cancelAt = c.shortAt, -1, -1
		u.enqueue(ci)
	case c.cancelAt >= 0:
		// Cancelled with no failed or short op before it in the chain: not a
		// link cancellation, so report the kernel's error.
		ops[c.cancelAt].Err, u.st[c.cancelAt].done = unix.ECANCELED, true
		c.failAt = c.cancelAt
		u.cancelAfter(ops, c, c.failAt)
	case c.next < c.end:
		u.enqueue(ci) // a chain longer than the ring: next segment
	}
}

func (u *uring) cancelAfter(ops []Op, c *chainState, failed int32) {
	for j := failed + 1; j < c.end; j++ {
		if !u.st[j].done {
			ops[j].Err, u.st[j].done = ErrCanceled, true
		}
	}
	c.next = c.end
}

func atomic32(p *uint32) uint32         { return atomic.LoadUint32(p) }
func storeAtomic32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }
