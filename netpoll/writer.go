package netpoll

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// maxIov is Linux's IOV_MAX.
	maxIov = 1024
	// copyChunk is how much of a file range the copy path reads at once.
	copyChunk = 256 << 10
	// maxSendfile bounds one sendfile call; the kernel caps it near 2 GiB anyway.
	maxSendfile = 1 << 30
)

// errAgain means the socket is full: wait for the watcher.
var errAgain = errors.New("socket send buffer full")

// pump writes answered responses at the head of the queue, in order, straight
// to the socket: bytes with writev, file ranges with sendfile (or the copy
// path). It never blocks: on EAGAIN it arms the writability watcher and
// returns. gnet's own outbound buffer is never used, so nothing can be queued
// ahead of a file range there. Runs on the loop.
func (c *Conn) pump() (progressed bool, err error) {
	if c.writable.Swap(false) {
		c.waitWritable = false
	}
	for c.head != nil && c.head.state.Load() == stateAnswered {
		r := c.head
		if r.noResp {
			c.finishHead()
			progressed = true
			continue
		}
		if c.waitWritable {
			return progressed, nil
		}
		if c.budget <= 0 {
			c.yield = true
			return progressed, nil
		}
		var n int64
		if c.wseg > 0 && r.parts[c.wseg-1].f != nil {
			n, err = c.writeFile(&r.parts[c.wseg-1])
		} else {
			n, err = c.writeBytes()
		}
		if n > 0 || err == nil {
			// n == 0 without error: only empty segments were left
			// before a file range or the end; advance skips them.
			c.budget -= n
			c.srv.stats.bytesOut.Add(uint64(n))
			if c.advance(n) {
				progressed = true
			}
		}
		if err == errAgain {
			c.waitWritable = true
			c.srv.stats.writeWaits.Add(1)
			if err := c.srv.watch.arm(c); err != nil {
				return progressed, fmt.Errorf("arm writability watcher: %w", err)
			}
			return progressed, nil
		}
		if err != nil {
			return progressed, err
		}
	}
	return progressed, nil
}

// writeBytes gathers byte segments from the head onwards (across responses,
// stopping at a file range or an unanswered request) into one writev.
func (c *Conn) writeBytes() (int64, error) {
	iov := c.iov[:0]
	var total int64
	seg, off := c.wseg, c.woff
gather:
	for r := c.head; r != nil && r.state.Load() == stateAnswered && !r.noResp; r = r.next {
		if r.hdrLen == 0 {
			if err := r.encodeHeader(); err != nil {
				return 0, err
			}
		}
		for ; seg <= len(r.parts); seg++ {
			var b []byte
			if seg == 0 {
				b = r.hdr[:r.hdrLen]
			} else {
				p := &r.parts[seg-1]
				if p.f != nil {
					break gather
				}
				b = p.b
			}
			b = b[off:]
			off = 0
			if len(b) == 0 {
				continue
			}
			iov = append(iov, unix.Iovec{Base: &b[0], Len: uint64(len(b))})
			total += int64(len(b))
			if len(iov) == maxIov || total >= c.budget {
				break gather
			}
		}
		seg = 0
	}
	c.iov = iov[:0]
	if len(iov) == 0 {
		// Only empty segments before a file range or the end: advance(0)
		// skips them.
		return 0, nil
	}
	for {
		n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(c.gc.Fd()),
			uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		clear(iov) // drop pointers into response memory
		switch e {
		case 0:
			if int64(n) < total {
				return int64(n), errAgain
			}
			return int64(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errAgain
		default:
			return 0, fmt.Errorf("writev: %w", e)
		}
	}
}

// writeFile writes some of the file range p, which is the current segment.
func (c *Conn) writeFile(p *Part) (int64, error) {
	if c.woff >= p.n {
		return 0, nil // empty range: advance(0) skips it
	}
	// Invariant: gnet's outbound buffer is empty because netpoll never
	// writes through gnet; flushing it here keeps a file range from
	// overtaking bytes should that ever change.
	if c.gc.OutboundBuffered() > 0 {
		if err := c.gc.Flush(); err != nil || c.gc.OutboundBuffered() > 0 {
			return 0, errAgain
		}
	}
	fd := p.f.Fd()
	if c.srv.cfg.CopyFileRanges || p.copyRest || fd == invalidFd || fd > 1<<31-1 {
		return c.copyFile(p)
	}
	off := p.off + c.woff
	count := min(p.n-c.woff, c.budget, maxSendfile)
	for {
		n, err := unix.Sendfile(c.gc.Fd(), int(fd), &off, int(count))
		switch {
		case n > 0:
			// A short count means a full socket or a short file;
			// the next call tells which.
			c.srv.stats.sendfileBytes.Add(uint64(n))
			return int64(n), nil
		case err == nil:
			return 0, fmt.Errorf("sendfile: file ends before offset %d + %d", off, count)
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errAgain
		case err == syscall.EINVAL || err == syscall.ENOSYS || err == syscall.EOPNOTSUPP:
			p.copyRest = true
			return c.copyFile(p)
		default:
			return 0, fmt.Errorf("sendfile: %w", err)
		}
	}
}

// copyFile is the copy path: pread a chunk into a pooled buffer, write it.
// It is used for Files without a descriptor, when sendfile refuses the file,
// and for every range when Config.CopyFileRanges is set (TLS later).
func (c *Conn) copyFile(p *Part) (int64, error) {
	if len(c.copyPend) == 0 {
		if c.copyBuf == nil {
			c.copyBuf = getBuf(copyChunk)
		}
		want := min(p.n-c.woff, copyChunk)
		m, err := p.f.ReadAt((*c.copyBuf)[:want], p.off+c.woff)
		if int64(m) < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read file range at %d: %w", p.off+c.woff, err)
		}
		c.copyPend = (*c.copyBuf)[:m]
	}
	for {
		n, err := unix.Write(c.gc.Fd(), c.copyPend)
		switch {
		case n > 0:
			c.copyPend = c.copyPend[n:]
			c.srv.stats.copiedFileBytes.Add(uint64(n))
			return int64(n), nil
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errAgain
		case err != nil:
			return 0, fmt.Errorf("write: %w", err)
		default:
			return 0, io.ErrShortWrite
		}
	}
}

// advance records n more bytes written, retiring finished responses. It
// reports whether any response finished.
func (c *Conn) advance(n int64) (finished bool) {
	for c.head != nil {
		r := c.head
		for c.wseg <= len(r.parts) {
			if l := r.segLen(c.wseg) - c.woff; n < l {
				c.woff += n
				return finished
			} else {
				n -= l
			}
			c.wseg++
			c.woff = 0
			if c.copyBuf != nil && len(c.copyPend) == 0 {
				// A file range finished through the copy path.
				putBuf(c.copyBuf)
				c.copyBuf = nil
			}
		}
		c.finishHead()
		finished = true
		if n == 0 {
			return finished
		}
	}
	if n != 0 {
		panic("netpoll: BUG: wrote more bytes than were queued")
	}
	return finished
}
