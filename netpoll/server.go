package netpoll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Server is the Kafka front door: a gnet engine that frames requests, hands
// them to a Handler and writes responses in request order.
//
// Start, Addr, Stop and Stats are safe for concurrent use from any goroutine.
type Server struct {
	cfg     Config
	handler Handler
	obs     ConnObserver // handler's optional interface, or nil
	log     *slog.Logger
	stats   counters
	nextID  atomic.Uint64

	mu       sync.Mutex // guards the fields below; never held while calling out
	started  bool
	stopping bool
	conns    map[*Conn]struct{}
	drained  chan struct{} // closed when stopping and conns is empty

	eng     gnet.Engine // set in OnBoot, before booted is closed
	addr    net.Addr
	watch   *watcher
	loops   *loopTracker // nil unless Config.OnLoopStart is set
	booted  chan struct{}
	runDone chan struct{}
	runErr  error // written before runDone is closed
	bootErr error // written by OnBoot before it asks gnet to shut down
}

// NewServer returns a Server that will dispatch requests to h. If h also
// implements ConnObserver it is told about connections opening and closing.
func NewServer(h Handler, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		handler: h,
		log:     cfg.Logger,
		conns:   make(map[*Conn]struct{}),
		drained: make(chan struct{}),
		booted:  make(chan struct{}),
		runDone: make(chan struct{}),
	}
	s.obs, _ = h.(ConnObserver)
	if cfg.OnLoopStart != nil {
		s.loops = newLoopTracker(cfg.OnLoopStart, cfg.Loops)
	}
	return s
}

// Start listens on addr ("tcp://127.0.0.1:9092", "127.0.0.1:9092", or port 0
// for an ephemeral port) and returns once the socket is listening; Addr then
// reports the bound address. A Server starts at most once.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("netpoll: server already started")
	}
	s.started = true
	s.mu.Unlock()

	if !strings.Contains(addr, "://") {
		addr = "tcp://" + addr
	}
	w, err := newWatcher(s.log)
	if err != nil {
		close(s.runDone) // lets Stop return
		return fmt.Errorf("netpoll: %w", err)
	}
	s.watch = w
	go func() {
		// ReusePort stays off: with it gnet binds one listener per loop
		// by re-resolving the address, which gives each loop its own
		// ephemeral port when addr asks for port 0. Without it one
		// acceptor reactor hands connections to the loops round-robin.
		s.runErr = gnet.Run(&events{s: s}, addr,
			gnet.WithNumEventLoop(s.cfg.Loops),
			gnet.WithReusePort(false),
			// SO_REUSEADDR, as Java sets it on Linux: a broker restarted
			// right after a crash rebinds its port despite TIME_WAIT.
			gnet.WithReuseAddr(true),
			gnet.WithReadBufferCap(s.cfg.ReadBufferSize),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{s.log}),
			gnet.WithLockOSThread(s.loops != nil),
		)
		close(s.runDone)
	}()
	select {
	case <-s.booted:
		if s.loops != nil {
			s.warmLoops()
		}
		return nil
	case <-s.runDone:
		w.close()
		err := s.runErr
		if err == nil {
			err = s.bootErr
		}
		if err == nil {
			err = errors.New("engine stopped during start")
		}
		return fmt.Errorf("netpoll: listen %s: %w", addr, err)
	}
}

// Addr is the bound listen address, nil before Start succeeds.
func (s *Server) Addr() net.Addr {
	select {
	case <-s.booted:
		return s.addr
	default:
		return nil
	}
}

// Stop shuts the server down gracefully: connections stop reading new
// requests (new connections are closed as soon as they are accepted), every
// request already read is answered and its response written, each connection
// closes once it has nothing in flight, then the engine stops. If ctx ends
// first, the remaining connections are closed with responses unsent and
// ctx's error is returned. Stop waits for the event loops to exit either way.
// Calling Stop more than once, or before Start, is harmless.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.started || s.stopping {
		s.mu.Unlock()
		if s.started {
			<-s.runDone
		}
		return nil
	}
	s.stopping = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	if len(s.conns) == 0 {
		close(s.drained)
	}
	s.mu.Unlock()

	select {
	case <-s.booted:
	case <-s.runDone:
		return nil // Start failed; nothing to stop
	}
	for _, c := range conns {
		c.Close()
	}
	var err error
	select {
	case <-s.drained:
	case <-s.runDone:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Engine.Stop polls for completion every 500ms; with an already
	// cancelled context it only triggers the shutdown, and runDone (gnet.Run
	// returning) tells us when the loops are gone.
	triggered, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.eng.Stop(triggered)
	<-s.runDone
	s.watch.close()
	return err
}

// events is the gnet.EventHandler; kept unexported so Server's API stays small.
type events struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (e *events) OnBoot(eng gnet.Engine) gnet.Action {
	s := e.s
	s.eng = eng
	// The listener exists before OnBoot; ask it which port it got.
	fd, err := eng.Dup()
	if err != nil {
		s.bootErr = err
		return gnet.Shutdown
	}
	sa, err := unix.Getsockname(fd)
	_ = unix.Close(fd)
	if err != nil {
		s.bootErr = err
		return gnet.Shutdown
	}
	s.addr = sockaddrToAddr(sa)
	close(s.booted)
	return gnet.None
}

func sockaddrToAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	}
	return nil
}

// localAddr asks the socket: gnet reports the listener's configured address
// (port 0, or a wildcard IP) rather than the one the client reached.
func localAddr(gc gnet.Conn) net.Addr {
	if sa, err := unix.Getsockname(gc.Fd()); err == nil {
		if a := sockaddrToAddr(sa); a != nil {
			return a
		}
	}
	return cloneAddr(gc.LocalAddr())
}

func (e *events) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := e.s
	if s.loops != nil && s.loops.opened(gc) {
		return nil, gnet.Close // Start's warm-up connection, not a client
	}
	c := &Conn{
		id:     s.nextID.Add(1),
		srv:    s,
		gc:     gc,
		remote: cloneAddr(gc.RemoteAddr()),
		local:  localAddr(gc),
	}
	gc.SetContext(c)
	s.stats.connsOpen.Add(1)
	s.stats.connsAccepted.Add(1)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	stopping := s.stopping
	s.mu.Unlock()
	if s.obs != nil {
		s.obs.ConnOpened(c)
	}
	if stopping {
		return nil, gnet.Close
	}
	return nil, gnet.None
}

func (e *events) OnClose(gc gnet.Conn, _ error) gnet.Action {
	s := e.s
	c, ok := gc.Context().(*Conn)
	if !ok {
		return gnet.None
	}
	s.watch.forget(c)
	c.onClose()
	if s.obs != nil {
		s.obs.ConnClosed(c)
	}
	s.stats.connsOpen.Add(-1)
	s.mu.Lock()
	delete(s.conns, c)
	if s.stopping && len(s.conns) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
	s.mu.Unlock()
	return gnet.None
}

func (e *events) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*Conn)
	if !ok {
		return gnet.Close
	}
	return c.onTraffic()
}
