package netpoll

import (
	"bufio"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// delayed answers every request from its own goroutine after a random delay,
// so answers arrive at netpoll out of request order.
func delayed(maxDelay time.Duration) HandlerFunc {
	return func(r *Request) {
		d := time.Duration(rand.Int64N(int64(maxDelay)))
		go func() {
			time.Sleep(d)
			r.Respond(Bytes(r.Body))
		}()
	}
}

func TestResponsesInRequestOrderWithRandomDelays(t *testing.T) {
	s, _ := startServer(t, delayed(3*time.Millisecond), Config{})
	const conns, perConn = 4, 300
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		conn := dial(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []byte
			for i := 0; i < perConn; i++ {
				out = appendFrame(out, 0, 3, int32(i), "order", false, bodyFor(i))
			}
			if _, err := conn.Write(out); err != nil {
				t.Error(err)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(conn)
			for i := 0; i < perConn; i++ {
				expectEcho(t, r, int32(i), bodyFor(i))
			}
		}()
	}
	wg.Wait()
	waitFor(t, "in-flight to drain", func() bool { return s.Stats().RequestsInFlight == 0 })
	if st := s.Stats(); st.Requests != conns*perConn || st.Responses != conns*perConn {
		t.Fatalf("stats: %+v", st)
	}
}

func TestFramesSplitByteByByte(t *testing.T) {
	s, _ := startServer(t, delayed(time.Millisecond), Config{})
	conn := dial(t, s)
	var out []byte
	const n = 12
	for i := 0; i < n; i++ {
		out = appendFrame(out, 0, 3, int32(i), "bytewise", false, bodyFor(i*7))
	}
	go func() {
		for i := range out {
			if _, err := conn.Write(out[i : i+1]); err != nil {
				t.Error(err)
				return
			}
			// Let most bytes arrive in reads of their own.
			if i%3 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	r := bufio.NewReader(conn)
	for i := 0; i < n; i++ {
		expectEcho(t, r, int32(i), bodyFor(i*7))
	}
}

// A frame larger than gnet's 64 KiB read buffer arrives over many reads.
func TestLargeFrameOverManyReads(t *testing.T) {
	s, _ := startServer(t, echo, Config{})
	conn := dial(t, s)
	body := make([]byte, 3<<20+17)
	for i := range body {
		body[i] = byte(i * 31)
	}
	frame := appendFrame(nil, 0, 3, 42, "big", false, body)
	go func() {
		for len(frame) > 0 {
			k := min(len(frame), 100_000)
			if _, err := conn.Write(frame[:k]); err != nil {
				t.Error(err)
				return
			}
			frame = frame[k:]
		}
	}()
	expectEcho(t, bufio.NewReader(conn), 42, body)
}

func TestManyPipelinedRequests(t *testing.T) {
	s, _ := startServer(t, echo, Config{})
	conn := dial(t, s)
	const n = 20000
	go func() {
		var out []byte
		for i := 0; i < n; i++ {
			out = appendFrame(out, 1, 4, int32(i), "pipe", false, bodyFor(i))
			if len(out) > 64<<10 {
				if _, err := conn.Write(out); err != nil {
					t.Error(err)
					return
				}
				out = out[:0]
			}
		}
		if _, err := conn.Write(out); err != nil {
			t.Error(err)
		}
	}()
	r := bufio.NewReaderSize(conn, 256<<10)
	for i := 0; i < n; i++ {
		expectEcho(t, r, int32(i), bodyFor(i))
	}
}

// NoResponse (acks=0) sends nothing but keeps its place in the order.
func TestNoResponseKeepsOrder(t *testing.T) {
	h := HandlerFunc(func(r *Request) {
		d := time.Duration(rand.IntN(2000)) * time.Microsecond
		go func() {
			time.Sleep(d)
			if r.CorrelationID%3 == 1 {
				r.NoResponse()
				return
			}
			r.Respond(Bytes(r.Body))
		}()
	})
	s, _ := startServer(t, h, Config{})
	conn := dial(t, s)
	const n = 300
	var out []byte
	for i := 0; i < n; i++ {
		out = appendFrame(out, 0, 3, int32(i), "acks0", false, bodyFor(i))
	}
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for i := 0; i < n; i++ {
		if i%3 == 1 {
			continue
		}
		expectEcho(t, r, int32(i), bodyFor(i))
	}
	waitFor(t, "in-flight to drain", func() bool { return s.Stats().RequestsInFlight == 0 })
}

// A second answer to the same request is a bug: logged, its parts released,
// nothing extra on the wire.
func TestDoubleRespondIsIgnored(t *testing.T) {
	released := make(chan struct{}, 2)
	h := HandlerFunc(func(r *Request) {
		r.Respond(Bytes([]byte("first")))
		r.Respond(Bytes([]byte("second")).WithRelease(func() { released <- struct{}{} }))
	})
	s, logs := startServer(t, h, Config{})
	conn := dial(t, s)
	if _, err := conn.Write(appendFrame(nil, 0, 3, 1, "x", false, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(appendFrame(nil, 0, 3, 2, "x", false, nil)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	expectEcho(t, r, 1, []byte("first"))
	expectEcho(t, r, 2, []byte("first"))
	<-released
	waitFor(t, "BUG log", func() bool { return contains(logs.String(), "answered twice") })
}
