package netpoll

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// loopRecorder is an echo handler that records the OnLoopStart calls and
// the threads Serve runs on, and counts what the ConnObserver sees.
type loopRecorder struct {
	mu        sync.Mutex
	hookTids  map[int]int // loop -> thread
	calls     int
	serveTids map[int]bool
	opened    int
}

func newLoopRecorder() *loopRecorder {
	return &loopRecorder{hookTids: map[int]int{}, serveTids: map[int]bool{}}
}

func (r *loopRecorder) onLoopStart(loop int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.hookTids[loop] = unix.Gettid()
}

func (r *loopRecorder) Serve(req *Request) {
	r.mu.Lock()
	r.serveTids[unix.Gettid()] = true
	r.mu.Unlock()
	req.Respond(Bytes(req.Body))
}

func (r *loopRecorder) ConnOpened(*Conn) { r.mu.Lock(); r.opened++; r.mu.Unlock() }
func (r *loopRecorder) ConnClosed(*Conn) {}

// TestOnLoopStart: by the time Start returns every loop has run the hook
// once, each on its own thread; the warm-up connections that got it there
// reach neither the observer nor the stats; afterwards every request is
// served on one of those threads (the loops stay locked to them) and
// clients trigger no further calls. Also on a wildcard listener, whose
// warm-up dials loopback.
func TestOnLoopStart(t *testing.T) {
	f := func(listen string) {
		t.Helper()
		rec := newLoopRecorder()
		s := NewServer(rec, Config{Loops: 3, OnLoopStart: rec.onLoopStart})
		if err := s.Start(listen); err != nil {
			t.Fatal(err)
		}
		defer s.Stop(t.Context())
		rec.mu.Lock()
		calls, tids := rec.calls, rec.hookTids
		rec.mu.Unlock()
		if calls != 3 || len(tids) != 3 {
			t.Fatalf("%s: after Start: %d hook calls for loops %v, want 3 for 0,1,2", listen, calls, tids)
		}
		distinct := map[int]bool{}
		for _, tid := range tids {
			distinct[tid] = true
		}
		if len(distinct) != 3 {
			t.Errorf("%s: loops share threads: %v", listen, tids)
		}
		rec.mu.Lock()
		opened := rec.opened
		rec.mu.Unlock()
		if st := s.Stats(); st.ConnsAccepted != 0 || st.ConnsOpen != 0 || opened != 0 {
			t.Errorf("%s: warm-up connections visible: stats %+v, observer saw %d", listen, st, opened)
		}
		port := s.Addr().(*net.TCPAddr).Port
		for i := range 6 {
			c, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(appendFrame(nil, 18, 0, int32(i), "c", false, bodyFor(i))); err != nil {
				t.Fatal(err)
			}
			expectEcho(t, c, int32(i), bodyFor(i))
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.calls != 3 || rec.opened != 6 {
			t.Errorf("%s: after 6 clients: %d hook calls, %d opened", listen, rec.calls, rec.opened)
		}
		for tid := range rec.serveTids {
			if !distinct[tid] {
				t.Errorf("%s: a request was served on thread %d, not a loop's locked thread %v", listen, tid, tids)
			}
		}
	}
	f("127.0.0.1:0")
	f("0.0.0.0:0")
}

// fakeLoop and fakeConn stand in for gnet's values in loopTracker tests;
// only EventLoop and RemoteAddr are called.
type fakeLoop struct {
	gnet.EventLoop
	id int
}

type fakeConn struct {
	gnet.Conn
	el     *fakeLoop
	remote net.Addr
}

func (c fakeConn) EventLoop() gnet.EventLoop { return c.el }
func (c fakeConn) RemoteAddr() net.Addr      { return c.remote }

// TestLoopTracker: the hook runs once per loop in order of first use, a
// loop the warm-up missed runs it at its first client, and only recorded
// warm-up source addresses are reported as warm-up (once each).
func TestLoopTracker(t *testing.T) {
	var got []int
	lt := newLoopTracker(func(loop int) { got = append(got, loop) }, 2)
	a, b := &fakeLoop{id: 1}, &fakeLoop{id: 2}
	client := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	warm := &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 40001} // mapped form: still matched
	lt.warm[netip.MustParseAddrPort("127.0.0.1:40001")] = true

	f := func(c fakeConn, wantWarm bool, wantHooks []int) {
		t.Helper()
		if w := lt.opened(c); w != wantWarm {
			t.Errorf("opened(%v on loop %d) warm-up = %v, want %v", c.remote, c.el.id, w, wantWarm)
		}
		if !slices.Equal(got, wantHooks) {
			t.Errorf("hooks %v, want %v", got, wantHooks)
		}
	}
	f(fakeConn{el: a, remote: client}, false, []int{0})
	f(fakeConn{el: a, remote: client}, false, []int{0})
	select {
	case <-lt.all:
		t.Fatal("all closed after one loop of two")
	default:
	}
	f(fakeConn{el: b, remote: warm}, true, []int{0, 1})
	f(fakeConn{el: b, remote: warm}, false, []int{0, 1}) // recorded once, consumed
	select {
	case <-lt.all:
	default:
		t.Fatal("all not closed after both loops started")
	}
}
