package segstore

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/sluicemq/sluice/ioring"
	"golang.org/x/sys/unix"
)

// residentPages counts the pages of path that are in the page cache.
func residentPages(t *testing.T, path string) (resident, total int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		t.Fatalf("stat %s: %v (size %d)", path, err, st.Size())
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+4095)/4096)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)),
		uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		if v&1 != 0 {
			resident++
		}
	}
	return resident, len(vec)
}

// diskStore opens a Store in a fresh directory on a real file system with a
// page cache, skipping the test on tmpfs (where the pages are the file). A
// nil cfg.Engine gets the "auto" engine; Dir and Logger are set here.
func diskStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	cfg.Dir = t.TempDir()
	var sfs unix.Statfs_t
	if err := unix.Statfs(cfg.Dir, &sfs); err != nil || sfs.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is tmpfs (or statfs failed: %v): no page cache", cfg.Dir, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.Engine == nil {
		eng, err := ioring.New(ioring.Options{Engine: "auto", Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Engine = eng
	}
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// With direct writes off, a cold log's synced pages leave the page cache; a
// normal log's stay.
func TestColdWritesDropSyncedPages(t *testing.T) {
	st := diskStore(t, Config{Flush: FlushAck, NoDirectWrites: true})
	defer st.Close()
	f := func(p int32, cold bool) (resident, total int) {
		t.Helper()
		l, err := st.CreateLog("cold", p, LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		l.SetColdWrites(cold)
		for i := range 40 {
			if r := appendSync(t, l, makeBatch(10, 3000+i, 1, nil), 0); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		return residentPages(t, filepath.Join(l.Dir(), "00000000000000000000.log"))
	}
	hot, total := f(0, false)
	if hot < total/2 {
		t.Skipf("only %d of %d pages of a normal log are cached: this system drops pages itself", hot, total)
	}
	cold, total := f(1, true)
	// The last page may be partly written and stays for the next append.
	if cold > 1 {
		t.Fatalf("cold log: %d of %d pages still cached, want at most the partial last one", cold, total)
	}
}
