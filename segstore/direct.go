package segstore

import (
	"errors"
	"unsafe"

	"github.com/sluicemq/sluice/ioring/vfs"
	"golang.org/x/sys/unix"
)

// Direct writes: a cold log (coldpages.go) writes with O_DIRECT where the
// file system allows it, so a follower's appends never enter the page cache —
// no page allocation, no copy into the cache, no writeback and drop after.
// On this project's VMs a fresh page-cache page costs several times a reused
// one, and on bare metal the cache stays for the leaders' hot tails.
//
// Direct I/O writes whole aligned blocks, so each write starts at the block
// holding the segment's end: the committer stages the partial last block
// (kept in memory) followed by the appends and zero padding up to the next
// block boundary, and writes that. The file therefore runs up to one block
// past the segment's size, in zeros. The padding is cut off when the segment
// rolls and at clean shutdown; after a crash, recovery cuts it (as padding,
// not as a torn tail: later segments stay; recover.go isPadding). Readers
// never look past size, and the kernel keeps the page cache coherent for the
// buffered reads (sendfile) of what direct writes wrote.

const directAlign = vfs.DirectAlign

// directState is a segment's direct-write state, guarded by the Log's mu.
type directState struct {
	f      vfs.File // the O_DIRECT handle, opened at the first direct write
	tail   []byte   // the segment's bytes from its last block boundary to size, when tailOK
	tailOK bool
	padded bool // the file may run past size, in zeros a direct write added
}

// directReadyLocked prepares seg for a direct write at its end: the O_DIRECT
// handle is open and the partial last block is in memory. false means this
// write goes through the page cache (no direct I/O here, or the tail could
// not be read). Called by the committer with l.mu held.
func (l *Log) directReadyLocked(seg *segment) bool {
	st := l.store
	d := &seg.dw
	if !l.cold || st.noDirect.Load() {
		seg.closeDirectLocked() // a log turned leader keeps no idle descriptor
		return false
	}
	if d.f == nil {
		dfs, ok := st.fs.(vfs.DirectFS)
		if !ok {
			st.noDirect.Store(true)
			return false
		}
		f, err := dfs.OpenDirect(segName(seg.dir, seg.base, ".log"))
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			// The file system has no O_DIRECT. Every log shares it, so stop
			// trying; cold logs drop their pages instead.
			if st.noDirect.CompareAndSwap(false, true) {
				st.log.Info("direct I/O unavailable, follower logs write through the page cache",
					"dir", l.dir, "err", err)
			}
			return false
		}
		if err != nil {
			// Out of descriptors or memory: this write goes through the
			// page cache; the next one tries again.
			st.log.Warn("open for direct I/O", "dir", l.dir, "err", err)
			return false
		}
		d.f = f
	}
	if !d.tailOK {
		n := seg.size % directAlign
		d.tail = d.tail[:0]
		if n > 0 {
			d.tail = append(d.tail, make([]byte, n)...)
			if _, err := seg.f.ReadAt(d.tail, seg.size-n); err != nil {
				st.log.Warn("read the partial block before a direct write", "dir", l.dir, "err", err)
				return false
			}
		}
		d.tailOK = true
	}
	return true
}

// stageDirect lays out a direct write of bufs at pos, seg's end: the partial
// block before pos, bufs, then zeros to a block boundary, in memory aligned
// for O_DIRECT. The result is written at pos rounded down to a block. Called
// by the committer with l.mu held, after directReadyLocked.
func (c *committer) stageDirect(seg *segment, pos int64, bufs [][]byte) []byte {
	start := pos &^ (directAlign - 1)
	end := pos
	for _, b := range bufs {
		end += int64(len(b))
	}
	n := (end + directAlign - 1) &^ (directAlign - 1)
	b := c.stageBuf(int(n - start))
	k := copy(b, seg.dw.tail[:pos-start])
	for _, p := range bufs {
		k += copy(b[k:], p)
	}
	clear(b[k:])
	return b
}

// stageBuf carves n aligned bytes out of the committer's staging arena,
// growing it (a new arena; earlier carvings stay valid) when it is short.
// The arena is reused round after round, so its memory stays warm.
func (c *committer) stageBuf(n int) []byte {
	if len(c.stage)-c.staged < n {
		c.stage = alignedBuf(max(n, 2*len(c.stage), 1<<20))
		c.staged = 0
	}
	b := c.stage[c.staged : c.staged+n : c.staged+n]
	c.staged += n
	return b
}

// maxIdleStage bounds the arena kept between rounds.
const maxIdleStage = 64 << 20

// endStageRound resets the arena for the next round. After a round with a
// failed op the arena is abandoned, not reused: a broken ring may still be
// reading it, and a late write of a rewritten block would put another log's
// bytes over acknowledged ones.
func (c *committer) endStageRound(failed bool) {
	c.staged = 0
	if failed || len(c.stage) > maxIdleStage {
		c.stage = nil
	}
}

// directStats makes the round's write counts logical for direct writes: an
// op's N includes the rewritten partial block and the padding.
func (c *committer) directStats() {
	for gi := range c.groups {
		g := &c.groups[gi]
		if g.stage == nil || g.writeOp < 0 {
			continue
		}
		w := &c.ops[g.writeOp]
		prefix := g.pos & (directAlign - 1)
		w.N = max(0, min(w.N-prefix, g.end-g.pos))
	}
}

// alignedBuf returns n bytes starting at a directAlign boundary.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	off := int(directAlign - uintptr(unsafe.Pointer(&b[0]))%directAlign)
	return b[off : off+n : off+n]
}

// afterDirectWriteLocked keeps the new partial last block of seg, whose size
// is now the staged write's end. Called with l.mu held.
func (d *directState) afterDirectWriteLocked(stage []byte, pos, size int64) {
	start := pos &^ (directAlign - 1)
	from := size &^ (directAlign - 1)
	d.tail = append(d.tail[:0], stage[from-start:size-start]...)
	d.tailOK = true
	d.padded = size%directAlign != 0
}

// truncatePaddingLocked truncates seg's file to its size if a direct write
// left zeros past it; cut says it did, and the caller must sync. Called with
// l.mu held and no write of seg in flight (the committer, or Close after the
// committers stopped): a cut racing a direct write would chop that write.
func (seg *segment) truncatePaddingLocked() (cut bool, err error) {
	if !seg.dw.padded {
		return false, nil
	}
	if err := seg.f.Truncate(seg.size); err != nil {
		return false, storageErr("truncate direct-write padding", err)
	}
	seg.dw.padded = false
	return true, nil
}

// cutPaddingLocked is truncatePaddingLocked followed by the sync. Same
// contract; for Close and truncate-fully, where holding l.mu over the sync
// costs nothing.
func (seg *segment) cutPaddingLocked() error {
	cut, err := seg.truncatePaddingLocked()
	if err == nil && cut {
		if err = seg.f.Sync(); err != nil {
			err = storageErr("fdatasync after cutting padding", err)
		}
	}
	return err
}

// closeDirectLocked closes seg's O_DIRECT handle, if any. Its writes are
// all complete (and fdatasync goes through seg.f), so a close error loses
// nothing. Called with l.mu held, or by the last release.
func (seg *segment) closeDirectLocked() {
	if seg.dw.f != nil {
		_ = seg.dw.f.Close()
		seg.dw.f = nil
	}
}
