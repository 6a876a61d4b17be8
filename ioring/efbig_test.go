package ioring

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sluicemq/sluice/ioring/vfs"
)

const (
	efbigEnv   = "SLUICE_IORING_EFBIG_CHILD" // "engine:dir" in the child process
	efbigLimit = 10000                       // RLIMIT_FSIZE in the child, in bytes
)

// TestShortWriteEFBIG makes the kernel really write short: a child process
// with RLIMIT_FSIZE of 10000 bytes writes 16 KiB at offset 0 with a linked
// fdatasync. The kernel writes 10000 bytes and returns that count; the engine
// resubmits the rest (re-issuing the fsync the short write cancelled), which
// fails with EFBIG. Expected: N = 10000, Err = EFBIG, fsync ErrCanceled, and
// an independent small write in the same batch succeeds.
func TestShortWriteEFBIG(t *testing.T) {
	if v := os.Getenv(efbigEnv); v != "" {
		efbigChild(v)
		return
	}
	for _, engine := range []string{"uring", "sync"} {
		t.Run(engine, func(t *testing.T) {
			if engine == "uring" {
				e, err := NewUring(8)
				if err != nil {
					t.Skipf("io_uring unavailable: %v", err)
				}
				e.Close()
			}
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestShortWriteEFBIG$", "-test.count=1")
			cmd.Env = append(os.Environ(), efbigEnv+"="+engine+":"+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			var n int64
			var werr, serr, small string
			line := out[bytes.Index(out, []byte("RESULT ")):]
			if _, err := fmt.Sscanf(string(line), "RESULT n=%d write=%q sync=%q small=%q", &n, &werr, &serr, &small); err != nil {
				t.Fatalf("child output %q: %v", out, err)
			}
			if n != efbigLimit || werr != unix.EFBIG.Error() || serr != ErrCanceled.Error() || small != "<nil>" {
				t.Fatalf("got N=%d write err %q, linked fsync %q, independent write %q;\nwant N=%d, %q, %q, <nil>",
					n, werr, serr, small, efbigLimit, unix.EFBIG.Error(), ErrCanceled.Error())
			}
			st, err := os.Stat(filepath.Join(dir, "big"))
			if err != nil || st.Size() != efbigLimit {
				t.Fatalf("file after the short write: %v, %v; want size %d", st, err, efbigLimit)
			}
		})
	}
}

// efbigChild runs in the re-executed test binary and prints one RESULT line.
func efbigChild(arg string) {
	engine, dir, _ := strings.Cut(arg, ":")
	fail := func(err error) { fmt.Println("child:", err); os.Exit(2) }
	// Past the limit the kernel sends SIGXFSZ, which kills by default; ignored,
	// the write returns EFBIG instead.
	signal.Ignore(syscall.SIGXFSZ)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		fail(err)
	}
	lim.Cur = efbigLimit
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		fail(err)
	}
	e, err := New(Options{Engine: engine, Entries: 8, Workers: 2})
	if err != nil {
		fail(err)
	}
	defer e.Close()
	big, err := vfs.OS.Create(filepath.Join(dir, "big"))
	if err != nil {
		fail(err)
	}
	small, err := vfs.OS.Create(filepath.Join(dir, "small"))
	if err != nil {
		fail(err)
	}
	// Three buffers so the limit falls inside the second one: the resubmitted
	// remainder starts in the middle of an iovec.
	bufs := [][]byte{make([]byte, 4096), make([]byte, 8192), make([]byte, 4096)}
	ops := []Op{
		{Kind: OpWrite, File: big, Bufs: bufs, Link: true},
		{Kind: OpSync, File: big},
		{Kind: OpWrite, File: small, Bufs: [][]byte{make([]byte, 100)}, Link: true},
		{Kind: OpSync, File: small},
	}
	e.Do(ops)
	if errno, ok := ops[0].Err.(syscall.Errno); ops[0].Err != nil && (!ok || errno != unix.EFBIG) {
		fail(fmt.Errorf("write error %#v is not syscall.Errno EFBIG", ops[0].Err))
	}
	fmt.Printf("RESULT n=%d write=%q sync=%q small=%q\n", ops[0].N, errString(ops[0].Err),
		errString(ops[1].Err), errString(errors.Join(ops[2].Err, ops[3].Err)))
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
