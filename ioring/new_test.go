package ioring

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNew(t *testing.T) {
	f := func(engine, wantName, wantLog string) {
		t.Helper()
		var logBuf bytes.Buffer
		e, err := New(Options{Engine: engine, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
		if wantName == "" {
			if err == nil || !strings.Contains(err.Error(), engine) {
				t.Fatalf("New(%q) = %v, %v; want an error naming it", engine, e, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("New(%q): %v", engine, err)
		}
		defer e.Close()
		if e.Name() != wantName || !strings.Contains(logBuf.String(), wantLog) {
			t.Fatalf("New(%q): engine %q, log %q; want %q logging %q", engine, e.Name(), logBuf.String(), wantName, wantLog)
		}
		// The engine New returns really works.
		file := create(t, t.TempDir(), "f")
		ops := []Op{{Kind: OpWrite, File: file, Bufs: [][]byte{[]byte("hi")}, Link: true}, {Kind: OpSync, File: file}}
		e.Do(ops)
		checkOps(t, ops)
	}
	f("sync", "sync", "engine=sync")
	f("bogus", "", "")
	u, err := NewUring(8)
	if err != nil {
		t.Logf("io_uring unavailable (%v): uring cases skipped", err)
		return
	}
	u.Close()
	f("uring", "uring", "engine=uring")
	f("auto", "uring", "engine=uring")
	f("", "uring", "engine=uring")
}

// withSetup replaces io_uring_setup for one test.
func withSetup(t *testing.T, hook func(entries uint32, p *uringParams) (int, error)) {
	real := setupHook
	setupHook = hook
	t.Cleanup(func() { setupHook = real })
}

func TestNewFallsBackWhenSetupFails(t *testing.T) {
	withSetup(t, func(uint32, *uringParams) (int, error) { return -1, unix.EPERM })
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	e, err := New(Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Name() != "sync" {
		t.Fatalf("auto with io_uring refused chose %q, want sync", e.Name())
	}
	if got := logBuf.String(); !strings.Contains(got, "using pwritev+fdatasync") || !strings.Contains(got, "operation not permitted") {
		t.Fatalf("fallback log does not say which engine runs and why: %q", got)
	}
	if _, err := New(Options{Engine: "uring", Logger: log}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("forced uring with io_uring refused: %v, want EPERM", err)
	}
}

// TestSetupRetriesWithoutCoopTaskrun: kernels before 5.19 reject
// COOP_TASKRUN with EINVAL; the ring is then set up without it.
func TestSetupRetriesWithoutCoopTaskrun(t *testing.T) {
	real := setupHook
	var flags []uint32
	withSetup(t, func(entries uint32, p *uringParams) (int, error) {
		flags = append(flags, p.flags)
		if p.flags&setupCoopTaskrun != 0 {
			return -1, unix.EINVAL
		}
		return real(entries, p)
	})
	e, err := NewUring(8)
	if err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	defer e.Close()
	if len(flags) != 2 || flags[1] != setupClamp|setupSubmitAll {
		t.Fatalf("setup flags tried: %#x", flags)
	}
	file := create(t, t.TempDir(), "f")
	ops := []Op{{Kind: OpWrite, File: file, Bufs: [][]byte{[]byte("hi")}, Link: true}, {Kind: OpSync, File: file}}
	e.Do(ops)
	checkOps(t, ops)

	withSetup(t, func(uint32, *uringParams) (int, error) { return -1, unix.EINVAL })
	if _, err := NewUring(8); err == nil || !strings.Contains(err.Error(), "5.18") {
		t.Fatalf("setup without SUBMIT_ALL support: %v, want an error naming Linux 5.18", err)
	}
}

// TestPartialSubmit makes the kernel consume only the first SQE of a linked
// chain (to_submit=1), as it does when it runs short of memory, and checks
// that the engine takes the rest back and finishes the batch correctly.
func TestPartialSubmit(t *testing.T) {
	e, err := NewUring(8)
	if err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	defer e.Close()
	u := e.(*uring)
	dir := t.TempDir()
	f, g := create(t, dir, "f"), create(t, dir, "g")
	ops := []Op{
		{Kind: OpWrite, File: f, Bufs: [][]byte{[]byte("one")}, Link: true},
		{Kind: OpWrite, File: f, Off: 3, Bufs: [][]byte{[]byte("two")}, Link: true},
		{Kind: OpSync, File: f},
		{Kind: OpWrite, File: g, Bufs: [][]byte{[]byte("three")}},
	}
	u.prepare(ops)
	u.fill(ops)
	u.r.publish()
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(u.r.fd), 1, 0, 0, 0, 0)
	if errno != 0 || n != 1 {
		t.Fatalf("io_uring_enter(to_submit=1) = %d, %v", n, errno)
	}
	u.reclaim(ops)
	if c := u.chains[0]; c.next != 1 || c.inflight != 1 {
		t.Fatalf("after reclaim chain 0 has next=%d inflight=%d, want 1, 1", c.next, c.inflight)
	}
	for pos := n; pos < 4; pos++ {
		if s := u.r.sqes[uint32(pos)&u.r.sqMask]; s.opcode != opNop || s.userData != nopTag {
			t.Fatalf("unconsumed SQE %d not turned into a NOP: %+v", pos, s)
		}
	}
	u.run(ops)
	checkOps(t, ops)
	if got := string(readBack(t, f)); got != "onetwo" {
		t.Fatalf("f = %q", got)
	}
	if got := string(readBack(t, g)); got != "three" {
		t.Fatalf("g = %q", got)
	}
	if u.inRing != 0 || u.r.tail != *u.r.sqHead {
		t.Fatalf("ring not drained: inRing=%d", u.inRing)
	}
}
