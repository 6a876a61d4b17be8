package segstore

import (
	"github.com/sluicemq/sluice/ioring/vfs"
	"golang.org/x/sys/unix"
)

// Cold writes: a follower's copy of a partition is read only if it becomes
// leader (or by the rare consumer that fetches from a follower), yet every
// byte it appends takes page-cache pages like the leader's hot tail does. On
// a broker that follows most of its partitions that is most of its page cache,
// and every new page costs a first touch: on a VM whose host reclaims the
// guest's free memory, fresh pages cost several times what recycled ones do
// (`dd conv=fdatasync` of 3 GB here: 2.1 s of system time, 0.55 s with
// oflag=nocache). So a log marked cold drops its pages from the cache once they
// are durable (POSIX_FADV_DONTNEED only drops clean pages), and the next
// appends reuse them.

// SetColdWrites marks the log's future appends as cold (on) or not. A cold
// log writes with O_DIRECT (direct.go) where the file system allows and
// Config.NoDirectWrites does not forbid it; otherwise it drops each synced
// range of its active segment from the page cache. Only synced data is
// dropped, so under log.flush.policy=os or interval such a log keeps its
// pages until a sync. Safe for concurrent use.
func (l *Log) SetColdWrites(on bool) {
	l.mu.Lock()
	l.cold = on
	l.mu.Unlock()
}

// coldRangeLocked returns the byte range of seg that is synced and not yet
// dropped, and records it as dropped. Called with l.mu held after a synced
// write; off is page-aligned down so the page that straddled the last drop's
// end goes this time (the kernel drops only whole pages inside the range).
func (l *Log) coldRangeLocked(seg *segment) (f vfs.File, off, n int64) {
	if !l.cold || seg.synced <= seg.dropped {
		return nil, 0, 0
	}
	off = seg.dropped &^ (4096 - 1)
	n = seg.synced - off
	seg.dropped = seg.synced
	return seg.f, off, n
}

// dropPages asks the kernel to drop f's clean pages in [off, off+n). A
// failure only costs memory, so it is not an error.
func dropPages(f vfs.File, off, n int64) {
	if f == nil || n <= 0 {
		return
	}
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return
	}
	_ = unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED)
}
