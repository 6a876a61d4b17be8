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

// A cold log's synced pages leave the page cache; a normal log's stay. Needs
// a real file system with a page cache (not tmpfs, where the pages are the
// file).
func TestColdWritesDropSyncedPages(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is tmpfs (or statfs failed: %v): no page cache to drop", dir, err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := ioring.New(ioring.Options{Engine: "auto", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(Config{Dir: dir, Engine: eng, Flush: FlushAck, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
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
