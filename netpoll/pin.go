package netpoll

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Loop start hook (Config.OnLoopStart), used by the node to pin each event
// loop's thread to a CPU.
//
// gnet v2.9.4 runs loops without any callback of their own and exposes
// neither the loop list nor a loop's index, so netpoll notices a loop the
// first time one of its connections opens (OnOpen runs on the loop's
// goroutine) and tells loops apart by gnet's EventLoop value. To have every
// loop started at Start rather than at its first client, Start opens one
// connection per loop to its own listener: gnet's acceptor hands accepted
// connections to the loops round-robin, so Loops of them reach every loop
// unless a client connects at the same moment (then a loop left out runs
// the hook at its first real connection). Those warm-up connections are
// recognised in OnOpen by their source address (bound before connecting,
// so it is known before the server can see the connection), closed at once,
// and never reach the Handler, the ConnObserver or the stats.

// warmTimeout bounds how long Start waits for the warm-up connections.
const warmTimeout = 2 * time.Second

// loopTracker runs the hook once per loop. Its mutex is taken alone.
type loopTracker struct {
	hook  func(loop int)
	loops int

	mu   sync.Mutex
	seen map[gnet.EventLoop]int // loop -> number in order of first use
	warm map[netip.AddrPort]bool

	started atomic.Int32  // hooks that have returned
	all     chan struct{} // closed when started reaches loops
}

func newLoopTracker(hook func(int), loops int) *loopTracker {
	return &loopTracker{hook: hook, loops: loops, seen: map[gnet.EventLoop]int{},
		warm: map[netip.AddrPort]bool{}, all: make(chan struct{})}
}

// opened runs first thing in OnOpen, on gc's loop goroutine. It runs the
// hook if this is the loop's first connection and reports whether gc is a
// warm-up connection, which the caller closes without serving.
func (lt *loopTracker) opened(gc gnet.Conn) (warmUp bool) {
	el := gc.EventLoop()
	key := addrPort(gc.RemoteAddr())
	lt.mu.Lock()
	loop, known := lt.seen[el]
	if !known {
		loop = len(lt.seen)
		lt.seen[el] = loop
	}
	if lt.warm[key] {
		warmUp = true
		delete(lt.warm, key)
	}
	lt.mu.Unlock()
	if !known {
		lt.hook(loop)
		if int(lt.started.Add(1)) == lt.loops {
			close(lt.all)
		}
	}
	return warmUp
}

// warmLoops opens one connection per loop to the server's own listener and
// waits (up to warmTimeout) until every loop has run the hook, then closes
// them. Failures are logged and leave the remaining loops to their first
// clients.
func (s *Server) warmLoops() {
	lt := s.loops
	target, ok := s.addr.(*net.TCPAddr)
	if !ok {
		return // a unix socket: nothing to bind a source address to
	}
	ip, _ := netip.AddrFromSlice(target.IP)
	ip = ip.Unmap()
	if ip.IsUnspecified() {
		// 0.0.0.0, or [::] which (dual-stack, gnet's default) takes IPv4
		// too and is more likely to work than ::1 in a container.
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	network := "tcp6"
	if ip.Is4() {
		network = "tcp4"
	}
	dst := netip.AddrPortFrom(ip, uint16(target.Port)).String()
	deadline := time.Now().Add(warmTimeout)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range s.cfg.Loops {
		d := net.Dialer{Deadline: deadline, Control: func(_, _ string, rc syscall.RawConn) error {
			return lt.bindWarm(rc, ip)
		}}
		c, err := d.Dial(network, dst)
		if err != nil {
			s.log.Warn("netpoll: warm-up connection failed; unstarted event loops run OnLoopStart at their first client",
				"addr", dst, "err", err)
			return
		}
		conns = append(conns, c)
	}
	select {
	case <-lt.all:
	case <-time.After(time.Until(deadline)):
		s.log.Warn("netpoll: not every event loop saw a warm-up connection; the rest run OnLoopStart at their first client",
			"loops", s.cfg.Loops, "started", lt.started.Load())
	}
}

// bindWarm binds a warm-up socket to ip and an ephemeral port before it
// connects, and records that source address: the server may accept the
// connection before Dial returns, and must already know it is ours.
func (lt *loopTracker) bindWarm(rc syscall.RawConn, ip netip.Addr) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: ip.As4()}
		if ip.Is6() {
			sa = &unix.SockaddrInet6{Addr: ip.As16()}
		}
		if err = unix.Bind(int(fd), sa); err != nil {
			return
		}
		var got unix.Sockaddr
		if got, err = unix.Getsockname(int(fd)); err != nil {
			return
		}
		key := addrPort(sockaddrToAddr(got))
		lt.mu.Lock()
		lt.warm[key] = true
		lt.mu.Unlock()
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// addrPort normalizes a TCP address for comparison (IPv4-mapped IPv6 as
// IPv4); anything else yields the zero AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(t.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(t.Port))
}
