package ioring

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// realEngines runs f once per real engine. entries sizes the io_uring SQ (the
// sync engine has no ring). io_uring being refused by the host skips only the
// uring case.
func realEngines(t *testing.T, entries uint32, f func(t *testing.T, e Engine)) {
	t.Run("uring", func(t *testing.T) {
		e, err := NewUring(entries)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
			t.Skipf("io_uring refused by this host: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		f(t, e)
	})
	t.Run("sync", func(t *testing.T) {
		e := NewSync(4)
		defer e.Close()
		f(t, e)
	})
}

func create(t testing.TB, dir, name string) vfs.File {
	t.Helper()
	f, err := vfs.OS.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func readBack(t *testing.T, f vfs.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkOps fails unless every op succeeded and every write wrote it all.
func checkOps(t *testing.T, ops []Op) {
	t.Helper()
	for i := range ops {
		op := &ops[i]
		if op.Err != nil {
			t.Fatalf("op %d (kind %d, %s): %v", i, op.Kind, op.File.Name(), op.Err)
		}
		if op.Kind == OpWrite && op.N != op.Len() {
			t.Fatalf("op %d: N = %d, want %d", i, op.N, op.Len())
		}
	}
}

func TestManyFilesLinkedWriteSync(t *testing.T) {
	realEngines(t, 32, func(t *testing.T, e Engine) {
		dir, r := t.TempDir(), rand.New(rand.NewPCG(1, 2))
		const files = 24
		var ops []Op
		want := make([][]byte, files)
		for i := range files {
			f := create(t, dir, fmt.Sprintf("f%02d", i))
			a, b := randBytes(r, 1000+i*37), randBytes(r, 4096)
			want[i] = append(append([]byte(nil), a...), b...)
			ops = append(ops, Op{Kind: OpWrite, File: f, Bufs: [][]byte{a, b}, Link: true},
				Op{Kind: OpSync, File: f})
		}
		for round := range 2 { // the second round reuses ring slots and state
			e.Do(ops)
			checkOps(t, ops)
			for i := range files {
				if got := readBack(t, ops[2*i].File); !bytes.Equal(got, want[i]) {
					t.Fatalf("round %d file %d: read back %d bytes, differ from the %d written", round, i, len(got), len(want[i]))
				}
			}
		}
	})
}

func TestIovecs(t *testing.T) {
	realEngines(t, 8, func(t *testing.T, e Engine) {
		dir, r := t.TempDir(), rand.New(rand.NewPCG(3, 4))
		f := create(t, dir, "iov")
		bufs := [][]byte{randBytes(r, 3), nil, randBytes(r, 5000), {}, randBytes(r, 1)}
		// More iovecs than UIO_MAXIOV: the engines must split the write.
		many := make([][]byte, 2500)
		for i := range many {
			many[i] = randBytes(r, 1+i%7)
		}
		g := create(t, dir, "many")
		ops := []Op{
			{Kind: OpWrite, File: f, Off: 100, Bufs: bufs, Link: true},
			{Kind: OpSync, File: f},
			{Kind: OpWrite, File: g, Bufs: many, Link: true},
			{Kind: OpSync, File: g},
		}
		e.Do(ops)
		checkOps(t, ops)
		want := append(make([]byte, 100), bytes.Join(bufs, nil)...)
		if got := readBack(t, f); !bytes.Equal(got, want) {
			t.Fatalf("iovecs at offset 100: got %d bytes, want %d, content differs", len(got), len(want))
		}
		if got := readBack(t, g); !bytes.Equal(got, bytes.Join(many, nil)) {
			t.Fatalf("%d iovecs: read back %d bytes, content differs", len(many), len(got))
		}
	})
}

func TestOrderAndOffsets(t *testing.T) {
	realEngines(t, 8, func(t *testing.T, e Engine) {
		dir := t.TempDir()
		f, g := create(t, dir, "f"), create(t, dir, "g")
		ops := []Op{
			// Linked writes to overlapping ranges run in order: the later wins.
			{Kind: OpWrite, File: f, Off: 0, Bufs: [][]byte{[]byte("AAAAAA")}, Link: true},
			{Kind: OpWrite, File: f, Off: 2, Bufs: [][]byte{[]byte("BB")}, Link: true},
			{Kind: OpWrite, File: f, Off: 3, Bufs: [][]byte{[]byte("C")}, Link: true},
			{Kind: OpSync, File: f},
			// Independent single writes at disjoint offsets.
			{Kind: OpWrite, File: g, Off: 8, Bufs: [][]byte{[]byte("y")}},
			{Kind: OpWrite, File: g, Off: 0, Bufs: [][]byte{[]byte("x")}},
			{Kind: OpWrite, File: g, Off: 4, Bufs: [][]byte{[]byte("zz")}},
		}
		e.Do(ops)
		checkOps(t, ops)
		if got := string(readBack(t, f)); got != "AABCAA" {
			t.Fatalf("linked overlapping writes: got %q, want %q", got, "AABCAA")
		}
		if got := readBack(t, g); !bytes.Equal(got, []byte("x\x00\x00\x00zz\x00\x00y")) {
			t.Fatalf("writes at offsets: got %q", got)
		}
	})
}

func TestMemFSFileFails(t *testing.T) {
	realEngines(t, 8, func(t *testing.T, e Engine) {
		mem := vfs.NewMem()
		mf, err := mem.Create("/seg")
		if err != nil {
			t.Fatal(err)
		}
		real := create(t, t.TempDir(), "real")
		ops := []Op{
			{Kind: OpWrite, File: mf, Bufs: [][]byte{[]byte("lost")}, Link: true},
			{Kind: OpSync, File: mf},
			{Kind: OpWrite, File: real, Bufs: [][]byte{[]byte("kept")}, Link: true},
			{Kind: OpSync, File: real},
			{Kind: OpSync, File: nil}, // a nil File is an error too, not a crash
		}
		e.Do(ops)
		if !errors.Is(ops[0].Err, ErrNoFd) || ops[0].N != 0 {
			t.Fatalf("write to MemFS file: N=%d err=%v, want 0, ErrNoFd", ops[0].N, ops[0].Err)
		}
		if ops[1].Err != ErrCanceled {
			t.Fatalf("fsync linked after it: %v, want ErrCanceled", ops[1].Err)
		}
		checkOps(t, ops[2:4])
		if !errors.Is(ops[4].Err, ErrNoFd) {
			t.Fatalf("nil File: %v, want ErrNoFd", ops[4].Err)
		}
	})
}

func TestLinkedFailureCancels(t *testing.T) {
	realEngines(t, 8, func(t *testing.T, e Engine) {
		dir := t.TempDir()
		name := filepath.Join(dir, "ro")
		if err := os.WriteFile(name, []byte("orig"), 0o644); err != nil {
			t.Fatal(err)
		}
		ro, err := vfs.OS.Open(name) // read-only: a write is EBADF
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		other := create(t, dir, "other")
		ops := []Op{
			{Kind: OpWrite, File: ro, Bufs: [][]byte{[]byte("new!")}, Link: true},
			{Kind: OpSync, File: ro, Link: true},
			{Kind: OpWrite, File: other, Bufs: [][]byte{[]byte("never")}},
			{Kind: OpWrite, File: other, Off: 10, Bufs: [][]byte{[]byte("ok")}, Link: true},
			{Kind: OpSync, File: other},
		}
		e.Do(ops)
		var errno syscall.Errno
		if !errors.As(ops[0].Err, &errno) || errno != unix.EBADF || ops[0].N != 0 {
			t.Fatalf("write to read-only file: N=%d err=%#v, want 0, EBADF as syscall.Errno", ops[0].N, ops[0].Err)
		}
		for i := 1; i <= 2; i++ {
			if ops[i].Err != ErrCanceled || ops[i].N != 0 {
				t.Fatalf("op %d linked after the failed write: N=%d err=%v, want ErrCanceled", i, ops[i].N, ops[i].Err)
			}
		}
		checkOps(t, ops[3:])
		if got := readBack(t, other); !bytes.Equal(got, append(make([]byte, 10), "ok"...)) {
			t.Fatalf("cancelled write landed: file holds %q", got)
		}
	})
}

// TestMoreOpsThanEntries uses a 4-entry ring: independent chains are
// submitted in chunks, and a chain longer than the ring in segments that keep
// the link semantics, including cancellation after a failure.
func TestMoreOpsThanEntries(t *testing.T) {
	realEngines(t, 4, func(t *testing.T, e Engine) {
		dir, r := t.TempDir(), rand.New(rand.NewPCG(5, 6))
		var ops []Op
		const files = 30
		for i := range files {
			f := create(t, dir, fmt.Sprintf("f%02d", i))
			ops = append(ops, Op{Kind: OpWrite, File: f, Bufs: [][]byte{randBytes(r, 512)}, Link: true},
				Op{Kind: OpSync, File: f})
		}
		long := create(t, dir, "long")
		for i := range 11 {
			ops = append(ops, Op{Kind: OpWrite, File: long, Off: int64(i), Bufs: [][]byte{{byte('a' + i)}}, Link: true})
		}
		ops = append(ops, Op{Kind: OpSync, File: long})
		e.Do(ops)
		checkOps(t, ops)
		for i := range files {
			if got := readBack(t, ops[2*i].File); !bytes.Equal(got, ops[2*i].Bufs[0]) {
				t.Fatalf("file %d differs", i)
			}
		}
		if got := string(readBack(t, long)); got != "abcdefghijk" {
			t.Fatalf("chain longer than the ring wrote %q", got)
		}

		// The same long chain with a failing op in its third segment.
		ro, err := vfs.OS.Open(long.Name())
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		tail := create(t, dir, "tail")
		chain := ops[2*files:]
		chain[9].File = ro
		chain[10].File = tail
		e.Do(chain)
		checkOps(t, chain[:9])
		if !errors.Is(chain[9].Err, unix.EBADF) {
			t.Fatalf("failing op in a long chain: %v, want EBADF", chain[9].Err)
		}
		for i := 10; i < len(chain); i++ {
			if chain[i].Err != ErrCanceled {
				t.Fatalf("op %d after it: %v, want ErrCanceled", i, chain[i].Err)
			}
		}
		if got := readBack(t, tail); len(got) != 0 {
			t.Fatalf("cancelled write in a later segment landed: %q", got)
		}
	})
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	realEngines(t, 64, func(t *testing.T, e Engine) {
		dir := t.TempDir()
		buf := make([]byte, 4096)
		var ops []Op
		for i := range 8 {
			f := create(t, dir, fmt.Sprintf("f%d", i))
			ops = append(ops, Op{Kind: OpWrite, File: f, Bufs: [][]byte{buf, buf[:100]}, Link: true},
				Op{Kind: OpSync, File: f})
		}
		e.Do(ops) // warm up: grows the engine's bookkeeping
		allocs := testing.AllocsPerRun(20, func() { e.Do(ops) })
		checkOps(t, ops)
		if allocs != 0 {
			t.Fatalf("Do allocates %.1f times per call in steady state, want 0", allocs)
		}
	})
}

func TestClosedEngine(t *testing.T) {
	realEngines(t, 8, func(t *testing.T, e Engine) {
		f := create(t, t.TempDir(), "f")
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		ops := []Op{{Kind: OpWrite, File: f, Bufs: [][]byte{[]byte("x")}}, {Kind: OpSync, File: f}}
		e.Do(ops)
		for i := range ops {
			if ops[i].Err == nil {
				t.Fatalf("op %d on a closed engine succeeded", i)
			}
		}
	})
}
