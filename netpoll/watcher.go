package netpoll

import (
	"errors"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// watcher tells event loops when a socket they could not write to becomes
// writable again.
//
// gnet v2.9.4 offers no writability callback: its EPOLLOUT handling only
// drains gnet's own outbound buffer and never calls back. So each Server runs
// one goroutine blocked in epoll_wait on a second epoll instance of its own.
// After a write hits EAGAIN the loop adds the socket there with
// EPOLLOUT|EPOLLONESHOT (a socket may sit in several epoll sets; gnet's set,
// which watches reads, is not touched). When it fires, the watcher flags the
// connection and wakes it through gnet's Conn.Wake, so all writing stays on
// the loop. epoll_ctl reports readiness that already holds when arming, so a
// socket drained between EAGAIN and arm is not missed.
type watcher struct {
	epfd int
	evfd int // eventfd that stops the goroutine
	log  *slog.Logger
	done chan struct{}

	mu    sync.Mutex // guards conns; taken by loops (arm/forget) and the goroutine
	conns map[uint64]*Conn
}

// stopID is the epoll data of the stop eventfd; Conn ids start at 1.
const stopID = 0

func newWatcher(log *slog.Logger) (*watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, stopID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	w := &watcher{epfd: epfd, evfd: evfd, log: log, done: make(chan struct{}), conns: make(map[uint64]*Conn)}
	go w.run()
	return w, nil
}

func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func (w *watcher) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			w.log.Error("netpoll: writability watcher stopped", "err", err)
			return
		}
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == stopID {
				return
			}
			w.mu.Lock()
			c := w.conns[id]
			w.mu.Unlock()
			if c != nil {
				c.writable.Store(true)
				c.kick()
			}
		}
	}
}

// arm asks for one wake when c's socket is writable. Loop only.
func (w *watcher) arm(c *Conn) error {
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT}
	setEventID(&ev, c.id)
	op := unix.EPOLL_CTL_MOD
	if !c.watchAdded {
		w.mu.Lock()
		w.conns[c.id] = c
		w.mu.Unlock()
		op = unix.EPOLL_CTL_ADD
	}
	if err := unix.EpollCtl(w.epfd, op, c.gc.Fd(), &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	c.watchAdded = true
	return nil
}

// forget removes c; called from OnClose while the socket is still open. Loop only.
func (w *watcher) forget(c *Conn) {
	if !c.watchAdded {
		return
	}
	err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, c.gc.Fd(), nil)
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBADF) {
		w.log.Warn("netpoll: watcher epoll_ctl del", "remote", c.remote, "err", err)
	}
	w.mu.Lock()
	delete(w.conns, c.id)
	w.mu.Unlock()
	c.watchAdded = false
}

// close stops the goroutine and frees the descriptors. Call once, after the
// engine has stopped (no loop calls arm or forget any more).
func (w *watcher) close() {
	var one = [8]byte{1}
	_, _ = unix.Write(w.evfd, one[:])
	<-w.done
	_ = unix.Close(w.epfd)
	_ = unix.Close(w.evfd)
}
