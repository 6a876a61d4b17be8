package netpoll

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestStopIsGraceful(t *testing.T) {
	g := &gate{}
	s, _ := startServer(t, g, Config{})
	conn := dial(t, s)
	idle := dial(t, s)
	const n = 5
	var out []byte
	for i := 0; i < n; i++ {
		out = appendFrame(out, 0, 3, int32(i), "stop", false, bodyFor(i))
	}
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "requests served", func() bool { return g.count() == n })

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- s.Stop(ctx)
	}()
	expectClosed(t, idle) // nothing in flight: closed at once
	// New connections are no longer served.
	if late, err := net.Dial("tcp", s.Addr().String()); err == nil {
		expectClosed(t, late)
		late.Close()
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned with requests in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	r := bufio.NewReader(conn)
	for i := n - 1; i >= 0; i-- { // answer in reverse: order must still hold
		g.answer(i)
	}
	for i := 0; i < n; i++ {
		expectEcho(t, r, int32(i), bodyFor(i))
	}
	expectClosed(t, conn)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := s.Stats(); st.ConnsOpen != 0 || st.RequestsInFlight != 0 || st.Responses != n {
		t.Fatalf("after Stop: %+v", st)
	}
}

func TestStopDeadline(t *testing.T) {
	g := &gate{}
	s, _ := startServer(t, g, Config{})
	conn := dial(t, s)
	if _, err := conn.Write(appendFrame(nil, 0, 3, 1, "never", false, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "request served", func() bool { return g.count() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Stop took %v", d)
	}
	expectClosed(t, conn)
	g.answer(0) // a late answer after shutdown must not touch the dead loop
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// Conn.Close from the node closes after the responses already owed.
func TestConnCloseAfterResponses(t *testing.T) {
	h := HandlerFunc(func(r *Request) {
		go func() {
			r.Respond(Bytes(r.Body))
			if r.CorrelationID == 1 {
				r.Conn.Close()
			}
		}()
	})
	s, _ := startServer(t, h, Config{})
	conn := dial(t, s)
	var out []byte
	for i := 0; i < 2; i++ {
		out = appendFrame(out, 0, 3, int32(i), "c", false, bodyFor(i))
	}
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	expectEcho(t, r, 0, bodyFor(0))
	expectEcho(t, r, 1, bodyFor(1))
	expectClosed(t, conn)
	waitFor(t, "closed", func() bool { return s.Stats().ConnsOpen == 0 })
}

func TestStartErrors(t *testing.T) {
	s, _ := startServer(t, echo, Config{})
	if err := s.Start("127.0.0.1:0"); err == nil {
		t.Fatal("second Start succeeded")
	}
	taken := NewServer(echo, Config{Loops: 1})
	if err := taken.Start(s.Addr().String()); err == nil {
		taken.Stop(context.Background())
		t.Fatal("Start on a port in use succeeded")
	}
	if err := NewServer(echo, Config{}).Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
}
