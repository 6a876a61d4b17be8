package segstore

// A transient OpenDirect failure (EMFILE) sends one write through the page
// cache; it does not turn direct writes off for the store.

import (
	"os"
	"sync/atomic"
	"testing"

	"github.com/sluicemq/sluice/ioring/vfs"
	"golang.org/x/sys/unix"
)

type flakyDirectFS struct {
	*vfs.MemFS
	fails atomic.Int32
}

func (f *flakyDirectFS) OpenDirect(name string) (vfs.File, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: unix.EMFILE}
	}
	return f.MemFS.OpenDirect(name)
}

func TestTransientOpenDirectErrorKeepsDirect(t *testing.T) {
	fs := &flakyDirectFS{MemFS: vfs.NewMem()}
	fs.fails.Store(1)
	cfg := quietConfig(fs, nil)
	cfg.Flush = FlushAck
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, _ := st.CreateLog("a", 0, LogConfig{})
	b, _ := st.CreateLog("b", 0, LogConfig{})
	a.SetColdWrites(true)
	b.SetColdWrites(true)
	if r := appendSync(t, a, makeBatch(1, 100, 1, nil), 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := appendSync(t, b, makeBatch(1, 100, 1, nil), 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	if st.noDirect.Load() {
		t.Fatal("one EMFILE from OpenDirect (log a) disabled O_DIRECT for every log, permanently")
	}
}
