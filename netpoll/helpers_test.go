package netpoll

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuf collects log output so tests can assert on what was logged.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer starts s on an ephemeral loopback port and stops it when the
// test ends. It returns the server and its captured log.
func startServer(t testing.TB, h Handler, cfg Config) (*Server, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	s := NewServer(h, cfg)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s, lb
}

func dial(t testing.TB, s *Server) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// appendFrame appends a request frame with a v1 header, or v2 (an empty tag
// buffer) when flexible is set. The tests build frames by hand here, and with
// kmsg.RequestFormatter where the header version itself is under test.
func appendFrame(dst []byte, key, ver int16, corr int32, clientID string, flexible bool, body []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(key))
	dst = binary.BigEndian.AppendUint16(dst, uint16(ver))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if flexible {
		dst = append(dst, 0)
	}
	dst = append(dst, body...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// readFrame reads one size-prefixed frame and returns what follows the size.
func readFrame(r io.Reader) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(sz[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

// expectEcho reads a response and checks it is corr followed by body
// (response header v0).
func expectEcho(t testing.TB, r io.Reader, corr int32, body []byte) {
	t.Helper()
	b, err := readFrame(r)
	if err != nil {
		t.Fatalf("reading response %d: %v", corr, err)
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		t.Fatalf("response out of order: got correlation id %d, want %d", got, corr)
	}
	if !bytes.Equal(b[4:], body) {
		t.Fatalf("response %d body mismatch: got %d bytes, want %d", corr, len(b)-4, len(body))
	}
}

// expectClosed asserts the server closes c without sending anything more.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil {
		t.Fatalf("expected close, read %d bytes err=%v", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection still open")
	}
}

// waitFor polls cond until it holds or the test's patience ends.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// echo answers every request with its own body, synchronously inside Serve.
var echo = HandlerFunc(func(r *Request) { r.Respond(Bytes(r.Body)) })

func bodyFor(i int) []byte {
	return []byte(strings.Repeat(string(rune('a'+i%26)), 1+i%97))
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
