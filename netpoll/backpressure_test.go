package netpoll

import (
	"bufio"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackpressureBoundsInFlight pipelines many requests with big responses
// and does not read until later. The handler counts requests from Serve until
// their response has gone to the kernel (the release callback); that count
// must stay within MaxInFlightRequests, reach it, and drain once the client
// reads.
func TestBackpressureBoundsInFlight(t *testing.T) {
	const limit, n = 4, 150
	big := make([]byte, 256<<10)
	var held, peak atomic.Int32
	h := HandlerFunc(func(r *Request) {
		v := held.Add(1)
		for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
		}
		corr := r.CorrelationID
		go r.Respond(Bytes(big[:corr%7]), Bytes(big).WithRelease(func() { held.Add(-1) }))
	})
	s, _ := startServer(t, h, Config{MaxInFlightRequests: limit})
	conn := dial(t, s)
	go func() {
		var out []byte
		for i := 0; i < n; i++ {
			out = appendFrame(out, 0, 3, int32(i), "bp", false, nil)
		}
		if _, err := conn.Write(out); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the limit to be reached", func() bool { return peak.Load() == limit })
	time.Sleep(100 * time.Millisecond) // give a broken limit time to show
	if st := s.Stats(); st.Requests >= n || st.RequestsInFlight > limit {
		t.Fatalf("not paused: %+v", st)
	}
	r := bufio.NewReaderSize(conn, 1<<20)
	for i := 0; i < n; i++ {
		want := append(append([]byte(nil), big[:i%7]...), big...)
		expectEcho(t, r, int32(i), want)
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("in flight peaked at %d, limit %d", p, limit)
	}
	waitFor(t, "drain", func() bool { return s.Stats().RequestsInFlight == 0 && held.Load() == 0 })
}

// gate holds every request until the test releases it.
type gate struct {
	mu   sync.Mutex
	reqs []*Request
}

func (g *gate) Serve(r *Request) {
	g.mu.Lock()
	g.reqs = append(g.reqs, r)
	g.mu.Unlock()
}

func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.reqs)
}

func (g *gate) answer(i int) {
	g.mu.Lock()
	r := g.reqs[i]
	g.mu.Unlock()
	r.Respond(Bytes(r.Body))
}

// settle waits for the gate to see want requests, then checks no more come.
func (g *gate) settle(t *testing.T, want int) {
	t.Helper()
	waitFor(t, "requests to arrive", func() bool { return g.count() >= want })
	time.Sleep(20 * time.Millisecond)
	if got := g.count(); got != want {
		t.Fatalf("handler saw %d requests, want exactly %d", got, want)
	}
}

func TestBackpressureRequestCountAndBytes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		bodySize int
		window   int
	}{
		{"count", Config{MaxInFlightRequests: 3}, 10, 3},
		// 600-byte frames, 1000-byte budget: the second fits under it,
		// the third would start at 1200.
		{"bytes", Config{MaxInFlightBytes: 1000}, 600 - minHeaderLen - 2, 2},
		// A frame above MaxInFlightBytes is still admitted alone.
		{"oversized alone", Config{MaxInFlightBytes: 100}, 500, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gate{}
			s, _ := startServer(t, g, tc.cfg)
			conn := dial(t, s)
			const n = 9
			body := make([]byte, tc.bodySize)
			var out []byte
			for i := 0; i < n; i++ {
				out = appendFrame(out, 0, 3, int32(i), "gt", false, body)
			}
			if _, err := conn.Write(out); err != nil {
				t.Fatal(err)
			}
			g.settle(t, tc.window)
			r := bufio.NewReader(conn)
			for i := 0; i < n; i++ {
				g.answer(i)
				expectEcho(t, r, int32(i), body)
				g.settle(t, min(n, i+1+tc.window))
			}
		})
	}
}

// A client that keeps sending while paused is cut off once gnet's inbound
// buffer holds more than MaxBufferedInbound.
func TestInboundOverflowWhilePaused(t *testing.T) {
	g := &gate{}
	s, logs := startServer(t, g, Config{MaxInFlightRequests: 1, MaxBufferedInbound: 1 << 20})
	conn := dial(t, s)
	frame := appendFrame(nil, 0, 3, 1, "flood", false, make([]byte, 64<<10))
	go func() {
		for i := 0; i < 64; i++ {
			if _, err := conn.Write(frame); err != nil {
				return
			}
		}
	}()
	expectClosed(t, conn)
	if !contains(logs.String(), "kept sending while paused") {
		t.Fatalf("not logged:\n%s", logs)
	}
	if g.count() != 1 {
		t.Fatalf("served %d requests while paused at 1", g.count())
	}
	g.answer(0) // answering after the close is harmless
}
