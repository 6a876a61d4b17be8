package netpoll

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// tempFile writes n pseudo-random bytes to a new file and returns it and its
// contents.
func tempFile(t testing.TB, n int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{7})
	_, _ = rng.Read(data)
	path := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// noFd hides a file's descriptor, like vfs.MemFS files, forcing the copy path.
type noFd struct{ io.ReaderAt }

func (noFd) Fd() uintptr { return invalidFd }

// fileHandler answers correlation id 0 with prefix + file range + suffix and
// every other request with an echo, counting part releases.
type fileHandler struct {
	f        File
	off, n   int64
	released atomic.Int32
}

var (
	filePrefix = []byte("<<prefix>>")
	fileSuffix = []byte("<<suffix>>")
)

func (h *fileHandler) Serve(r *Request) {
	if r.CorrelationID != 0 {
		r.Respond(Bytes(r.Body))
		return
	}
	rel := func() { h.released.Add(1) }
	go r.Respond(
		Bytes(filePrefix).WithRelease(rel),
		FileRange(h.f, h.off, h.n).WithRelease(rel),
		Bytes(nil), // empty parts are allowed anywhere
		FileRange(h.f, 0, 0),
		Bytes(fileSuffix).WithRelease(rel),
	)
}

// fileRoundTrip requests the file response plus one pipelined echo behind it,
// optionally sleeping before reading so the server hits a full socket.
func fileRoundTrip(t *testing.T, s *Server, h *fileHandler, want []byte, readDelay time.Duration) {
	t.Helper()
	conn := dial(t, s)
	out := appendFrame(nil, 1, 4, 0, "fetch", false, nil)
	out = appendFrame(out, 1, 4, 1, "fetch", false, []byte("after"))
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	time.Sleep(readDelay)
	r := bufio.NewReaderSize(conn, 64<<10)
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatal(err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if wantSize := 4 + len(filePrefix) + len(want) + len(fileSuffix); int(size) != wantSize {
		t.Fatalf("size prefix %d, want %d", size, wantSize)
	}
	if corr := binary.BigEndian.Uint32(hdr[4:]); corr != 0 {
		t.Fatalf("correlation id %d", corr)
	}
	got := make([]byte, int(size)-4)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, filePrefix) || !bytes.HasSuffix(got, fileSuffix) {
		t.Fatal("prefix/suffix not where expected")
	}
	if mid := got[len(filePrefix) : len(got)-len(fileSuffix)]; !bytes.Equal(mid, want) {
		i := 0
		for i < len(mid) && mid[i] == want[i] {
			i++
		}
		t.Fatalf("file range differs at byte %d of %d", i, len(want))
	}
	expectEcho(t, r, 1, []byte("after"))
	waitFor(t, "parts released", func() bool { return h.released.Load() == 3 })
}

func TestFileRangeResponse(t *testing.T) {
	f, data := tempFile(t, 1<<20)
	for _, tc := range []struct {
		name     string
		file     File
		copyMode bool
	}{
		{"sendfile", f, false},
		{"copy path by config", f, true},
		{"copy path for fd-less file", noFd{f}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &fileHandler{f: tc.file, off: 12345, n: 300000}
			s, _ := startServer(t, h, Config{CopyFileRanges: tc.copyMode})
			fileRoundTrip(t, s, h, data[12345:12345+300000], 0)
			st := s.Stats()
			if sendfile := !tc.copyMode && tc.file == File(f); sendfile != (st.SendfileBytes == 300000) ||
				sendfile == (st.CopiedFileBytes == 300000) {
				t.Fatalf("wrong path taken: %+v", st)
			}
		})
	}
}

// TestLargeFileRangeSlowReader sends 64 MiB to a client that starts reading
// late, so sendfile hits EAGAIN and the writability watcher must resume it.
func TestLargeFileRangeSlowReader(t *testing.T) {
	f, data := tempFile(t, 64<<20+4096)
	for _, copyMode := range []bool{false, true} {
		h := &fileHandler{f: f, off: 777, n: 64 << 20}
		s, _ := startServer(t, h, Config{CopyFileRanges: copyMode})
		fileRoundTrip(t, s, h, data[777:777+64<<20], 200*time.Millisecond)
		if st := s.Stats(); st.WriteWaits == 0 {
			t.Fatalf("copy=%v: never waited for writability: %+v", copyMode, st)
		}
	}
}

// A file shorter than the promised range cannot be answered correctly: the
// connection is closed and the parts are still released.
func TestFileRangePastEOFClosesConnection(t *testing.T) {
	f, _ := tempFile(t, 1000)
	for _, copyMode := range []bool{false, true} {
		h := &fileHandler{f: f, off: 500, n: 1000}
		s, logs := startServer(t, h, Config{CopyFileRanges: copyMode})
		conn := dial(t, s)
		if _, err := conn.Write(appendFrame(nil, 1, 4, 0, "", false, nil)); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, conn) // until the server closes
		waitFor(t, "parts released", func() bool { return h.released.Load() == 3 })
		if !contains(logs.String(), "closing connection") {
			t.Fatalf("copy=%v: not logged:\n%s", copyMode, logs)
		}
	}
}
