package segstore

// A cold log's zero-padded active segment must not outlive its place as the
// last segment: truncate-fully cuts the padding before the new segment exists,
// and recovery treats leftover padding as padding, not as a torn tail that
// would drop every later segment.

import (
	"errors"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// snapFS is a MemFS (with OpenDirect, promoted) that can take a crash
// snapshot just before a chosen Remove, or fail that Remove.
type snapFS struct {
	*vfs.MemFS
	mu     sync.Mutex
	match  func(name string) bool
	failRm bool
	snap   *vfs.MemFS
	rng    *rand.Rand
}

func (f *snapFS) Remove(name string) error {
	f.mu.Lock()
	hit := f.match != nil && f.match(name)
	if hit {
		f.match = nil
		if f.failRm {
			f.mu.Unlock()
			return errors.New("injected: unlink failed")
		}
		f.snap = f.MemFS.CrashClone(vfs.DropUnsynced, f.rng)
	}
	f.mu.Unlock()
	return f.MemFS.Remove(name)
}

// fillCold writes a cold (direct) follower log over several segments and
// leaves the active segment at a size that is not a multiple of 4096, so
// its file is zero-padded on disk.
func fillCold(t *testing.T, l *Log) int64 {
	t.Helper()
	l.SetColdWrites(true)
	var next int64
	for i := 0; i < 20; i++ {
		if err := appendReplicaSync(t, l, replicaBatch(next, 3, 1)); err != nil {
			t.Fatal(err)
		}
		next += 3
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.active(); !a.dw.padded {
		t.Fatalf("fixture: active segment (size %d) is not padded", a.size)
	}
	return next
}

// A crash inside TruncateFullyAndStartAt after the new start was
// checkpointed, before the old active segment is unlinked: the restart starts
// the log at offset. Were that segment still padded, it would be trusted (its
// successor's base is at the recovery point), fail its load on the zeros, and
// the cut would drop the new segment: the log would come back ending at the
// old end.
func TestTruncateFullyCrashWithPaddedSegment(t *testing.T) {
	fs := &snapFS{MemFS: vfs.NewMem(), rng: rand.New(rand.NewSource(1))}
	cfg := quietConfig(fs, nil)
	cfg.Flush = FlushAck
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.CreateLog("tf", 0, LogConfig{SegmentBytes: 8 << 10, IndexIntervalBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	leo := fillCold(t, l)
	l.mu.Lock()
	activeName := segName(l.dir, l.active().base, ".log")
	l.mu.Unlock()
	const off = 1000 // leader's log start, past our LEO: the follower's case
	fs.mu.Lock()
	fs.match = func(n string) bool { return n == activeName } // crash just before the old active goes
	fs.mu.Unlock()
	if err := l.TruncateFullyAndStartAt(off); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if fs.snap == nil {
		t.Fatal("never reached the removal of the old active segment")
	}

	st2, err := Open(quietConfig(fs.snap, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	o := st2.Log("tf", 0).Offsets()
	if o.Start != off || o.End != off {
		t.Fatalf("after a crash past the checkpoint the log is %+v, want start=end=%d (old LEO was %d)", o, off, leo)
	}
}

// The old active segment left behind by a failed unlink (deleteSegments only
// warns) while data lands at the new start and rolls over segments; after a
// clean close and reopen every segment appended since is still there.
func TestOrphanPaddedSegmentKeepsLaterSegments(t *testing.T) {
	fs := &snapFS{MemFS: vfs.NewMem(), failRm: true}
	cfg := quietConfig(fs, nil)
	cfg.Flush = FlushAck
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.CreateLog("tf", 0, LogConfig{SegmentBytes: 8 << 10, IndexIntervalBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	fillCold(t, l)
	l.mu.Lock()
	activeName := segName(l.dir, l.active().base, ".log")
	l.mu.Unlock()
	const off = 1000
	fs.mu.Lock()
	fs.match = func(n string) bool { return n == activeName }
	fs.mu.Unlock()
	if err := l.TruncateFullyAndStartAt(off); err != nil {
		t.Fatal(err)
	}
	next := int64(off)
	for i := 0; i < 60; i++ {
		if err := appendReplicaSync(t, l, replicaBatch(next, 3, 2)); err != nil {
			t.Fatal(err)
		}
		next += 3
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.ReadDir("/data/tf-0")
	t.Logf("files after clean close: %s", strings.Join(names, " "))

	st2, err := Open(quietConfig(fs.MemFS, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	o := st2.Log("tf", 0).Offsets()
	if o.End != next {
		t.Fatalf("after a clean restart the log is %+v, want end %d: the data appended at %d.. is gone", o, next, off)
	}
}
