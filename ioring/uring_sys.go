package ioring

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The io_uring kernel ABI (include/uapi/linux/io_uring.h). golang.org/x/sys/unix
// has the three syscall numbers but none of the structs or flags, so the subset
// this package uses is declared here. The layouts are fixed by the kernel ABI;
// the size assertions below fail to compile if a field is mistyped.

const (
	opNop    = 0 // IORING_OP_NOP
	opWritev = 2 // IORING_OP_WRITEV
	opFsync  = 3 // IORING_OP_FSYNC

	sqeIOLink     = 1 << 2 // IOSQE_IO_LINK
	fsyncDatasync = 1 << 0 // IORING_FSYNC_DATASYNC

	setupClamp       = 1 << 4 // IORING_SETUP_CLAMP: cap entries instead of EINVAL
	setupSubmitAll   = 1 << 7 // IORING_SETUP_SUBMIT_ALL (5.18)
	setupCoopTaskrun = 1 << 8 // IORING_SETUP_COOP_TASKRUN (5.19)

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP

	enterGetevents = 1 << 0 // IORING_ENTER_GETEVENTS

	offSQRing = 0          // IORING_OFF_SQ_RING (also the CQ ring with SINGLE_MMAP)
	offSQEs   = 0x10000000 // IORING_OFF_SQES

	registerProbe    = 8      // IORING_REGISTER_PROBE
	probeOpSupported = 1 << 0 // IO_URING_OP_SUPPORTED

	iovMax = 1024 // UIO_MAXIOV: more iovecs per writev is EINVAL
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe with the unions reduced to the members used here
// (off, addr, len, op flags: rw_flags or fsync_flags).
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	pad2        uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

type probeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

type probe struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
	ops    [256]probeOp
}

var (
	_ [120]byte        = [unsafe.Sizeof(uringParams{})]byte{}
	_ [64]byte         = [unsafe.Sizeof(sqe{})]byte{}
	_ [16]byte         = [unsafe.Sizeof(cqe{})]byte{}
	_ [16 + 256*8]byte = [unsafe.Sizeof(probe{})]byte{}
)

// setupHook is io_uring_setup; tests replace it to exercise New's fallback.
var setupHook = func(entries uint32, p *uringParams) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// ring is the mapped io_uring instance. Its SQ is written and its CQ read by
// the one goroutine running Do; the kernel is the other party.
type ring struct {
	fd      int
	mem     []byte // SQ and CQ rings: one mapping (IORING_FEAT_SINGLE_MMAP)
	sqeMem  []byte
	entries uint32 // SQ size

	sqHead, sqTail *uint32 // kernel advances head; we advance tail
	sqMask         uint32
	tail           uint32 // our copy of the SQ tail (we are its only writer)
	sqes           []sqe

	cqHead, cqTail *uint32 // we advance head; kernel advances tail
	cqMask         uint32
	cqes           []cqe
}

// openRing sets up a ring of at least min(entries, kernel max) SQ entries and
// checks that the kernel supports the ops this package submits.
func openRing(entries uint32) (*ring, error) {
	// SUBMIT_ALL is required, not just nice: without it the kernel stops
	// submitting at an SQE that fails preparation and the rest of that SQE's
	// link chain, left in the SQ, would later run as a new chain although an
	// op before it failed. COOP_TASKRUN only saves IPIs (we always enter the
	// kernel to wait), so it is dropped for kernels older than 5.19.
	p := uringParams{flags: setupClamp | setupSubmitAll | setupCoopTaskrun}
	fd, err := setupHook(entries, &p)
	if err == unix.EINVAL {
		p = uringParams{flags: setupClamp | setupSubmitAll}
		fd, err = setupHook(entries, &p)
		if err == unix.EINVAL {
			return nil, fmt.Errorf("io_uring_setup: %w (IORING_SETUP_SUBMIT_ALL needs Linux 5.18)", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("io_uring_setup: %w", err)
	}
	r := &ring{fd: fd}
	if err := r.init(&p); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *ring) init(p *uringParams) error {
	if p.features&featSingleMmap == 0 {
		return fmt.Errorf("io_uring: kernel lacks IORING_FEAT_SINGLE_MMAP (Linux 5.4)")
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	var err error
	prot, flags := unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE
	if r.mem, err = unix.Mmap(r.fd, offSQRing, int(size), prot, flags); err != nil {
		return fmt.Errorf("io_uring: mmap rings: %w", err)
	}
	sqeBytes := int(p.sqEntries) * int(unsafe.Sizeof(sqe{}))
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, sqeBytes, prot, flags); err != nil {
		return fmt.Errorf("io_uring: mmap SQEs: %w", err)
	}
	u32 := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }
	r.entries = p.sqEntries
	r.sqHead, r.sqTail, r.sqMask = u32(p.sqOff.head), u32(p.sqOff.tail), *u32(p.sqOff.ringMask)
	r.tail = atomic.LoadUint32(r.sqTail)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	// The SQ array maps ring slots to SQE indexes; the identity map set once
	// here lets us fill the SQE at slot tail&mask directly.
	array := unsafe.Slice(u32(p.sqOff.array), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.cqHead, r.cqTail, r.cqMask = u32(p.cqOff.head), u32(p.cqOff.tail), *u32(p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&r.mem[p.cqOff.cqes])), p.cqEntries)
	return r.probe()
}

// probe fails unless the kernel supports IORING_OP_WRITEV and IORING_OP_FSYNC,
// so New falls back to the sync engine instead of failing every op later.
func (r *ring) probe() error {
	var pr probe
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe,
		uintptr(unsafe.Pointer(&pr)), uintptr(len(pr.ops)), 0, 0)
	if errno != 0 {
		return fmt.Errorf("io_uring_register(PROBE): %w", errno)
	}
	for _, op := range []uint8{opWritev, opFsync} {
		if op >= pr.opsLen || pr.ops[op].flags&probeOpSupported == 0 {
			return fmt.Errorf("io_uring: kernel does not support opcode %d", op)
		}
	}
	return nil
}

// nextSQE zeroes and returns the SQE at the tail and advances our tail copy.
// The caller must have checked there is room. Zeroing matters: the slot still
// holds the op that used it last, and a stale field (rw_flags left over from
// an fsync's fsync_flags is the classic one) makes the kernel reject or
// misread the new op.
func (r *ring) nextSQE() *sqe {
	s := &r.sqes[r.tail&r.sqMask]
	*s = sqe{}
	r.tail++
	return s
}

// publish makes the SQEs written so far visible to the kernel. The atomic
// store orders the plain SQE writes before the tail (the kernel reads the
// tail with smp_load_acquire), and returns how many SQEs the kernel has not
// consumed yet.
func (r *ring) publish() uint32 {
	atomic.StoreUint32(r.sqTail, r.tail)
	return r.tail - atomic.LoadUint32(r.sqHead)
}

func (r *ring) close() {
	if r.sqeMem != nil {
		_ = unix.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}
