package segstore

// A roll's fdatasync of the old segment (with the cut of a direct write's
// padding) runs without the Log's mutex: readers and appends to the partition
// do not wait for the journal commit.

import (
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring/vfs"
)

type slowSyncFS struct {
	*vfs.MemFS // OpenDirect is promoted
	mu         sync.Mutex
	armed      bool
	entered    chan struct{}
	release    chan struct{}
}

type slowSyncFile struct {
	vfs.File
	fs *slowSyncFS
}

func (f slowSyncFile) Sync() error {
	f.fs.mu.Lock()
	armed := f.fs.armed
	f.fs.armed = false
	f.fs.mu.Unlock()
	if armed {
		close(f.fs.entered)
		<-f.fs.release
	}
	return f.File.Sync()
}

func (s *slowSyncFS) Create(name string) (vfs.File, error) {
	f, err := s.MemFS.Create(name)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f, s}, nil
}

func testRollSyncHoldsLock(t *testing.T, noDirect bool) {
	fs := &slowSyncFS{MemFS: vfs.NewMem(), entered: make(chan struct{}), release: make(chan struct{})}
	cfg := quietConfig(fs, nil)
	cfg.Flush = FlushAck
	cfg.NoDirectWrites = noDirect
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.CreateLog("r", 0, LogConfig{SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	l.SetColdWrites(true)
	if r := appendSync(t, l, makeBatch(1, 3000, 1, nil), 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	if noDirect { // make the roll need a sync, as under FlushOS
		l.mu.Lock()
		l.active().synced = 0
		l.mu.Unlock()
	}
	fs.mu.Lock()
	fs.armed = true
	fs.mu.Unlock()
	done := make(chan AppendResult, 1)
	if _, err := l.Append(makeBatch(1, 3000, 1, nil), 0, func(r AppendResult) { done <- r }); err != nil {
		t.Fatal(err)
	}
	<-fs.entered // the roll's first fdatasync is running
	got := make(chan struct{})
	go func() { l.Offsets(); close(got) }()
	var blocked bool
	select {
	case <-got:
	case <-time.After(500 * time.Millisecond):
		blocked = true
	}
	close(fs.release)
	<-done
	<-got
	if blocked {
		t.Fatal("Log.Offsets (and so Read/Append) blocked on l.mu for the whole fdatasync of the rolled segment")
	}
}

func TestRollSyncOutsideLockDirect(t *testing.T)   { testRollSyncHoldsLock(t, false) }
func TestRollSyncOutsideLockBuffered(t *testing.T) { testRollSyncHoldsLock(t, true) }
