package segstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
)

// replicaBatch is a batch as a leader holds it: n records from base, written
// in epoch (offsets and epoch sit outside the CRC).
func replicaBatch(base int64, n int, epoch int32) []byte {
	b := makeBatch(n, 50, 1_700_000_000_000+base, nil)
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
	return b
}

// fillForTruncate writes 30 batches of 2 records (offsets [0, 60)) over
// several segments, in epochs 1 and 2, every third one from an idempotent
// producer.
func fillForTruncate(t *testing.T, l *Log) {
	t.Helper()
	seq := int32(0)
	for i := 0; i < 30; i++ {
		b := makeBatch(2, 100, 1_700_000_000_000+int64(i), nil)
		if i%3 == 0 {
			b = keyedBatch([]kv{rec("a", "x"), rec("b", "y")}, 1_700_000_000_000, nil, 7, seq)
			seq += 2
		}
		if r := appendSync(t, l, b, int32(1+i/15)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// dirFiles lists the segment bases and snapshot offsets in dir.
func dirFiles(t *testing.T, fs vfs.FS, dir string) (segs, snaps []int64) {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if b, ok := parseSegName(n); ok {
			segs = append(segs, b)
		}
		if o, ok := parseSnapshotName(n); ok {
			snaps = append(snaps, o)
		}
	}
	slices.Sort(segs)
	slices.Sort(snaps)
	return segs, snaps
}

// checkRestarted checks a log that was truncated fully at off and then got
// the replicated batch at off: start, reads, files, epochs, producers.
func checkRestarted(t *testing.T, what string, fs vfs.FS, l *Log, off int64) {
	t.Helper()
	if o := l.Offsets(); o.Start != off || o.End != off+3 {
		t.Fatalf("%s: offsets %+v, want start %d end %d", what, o, off, off+3)
	}
	if got := l.Epochs(); !slices.Equal(got, []EpochEntry{{9, off}}) {
		t.Fatalf("%s: epochs %v, want [{9 %d}]", what, got, off)
	}
	if p := l.Producers(); len(p) != 0 {
		t.Fatalf("%s: producers %+v survived", what, p)
	}
	for _, below := range []int64{0, off - 1} {
		if below < 0 || below >= off {
			continue
		}
		if _, err := l.Read(below, 1<<20, -1); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("%s: read at %d below the start %d: %v, want ErrOffsetOutOfRange", what, below, off, err)
		}
	}
	got := readAll(t, l)
	if len(got) != 1 || !bytes.Equal(got[0], replicaBatch(off, 3, 9)) {
		t.Fatalf("%s: the log holds %d batches, want the one replicated at %d", what, len(got), off)
	}
	if segs, _ := dirFiles(t, fs, l.Dir()); !slices.Equal(segs, []int64{off}) {
		t.Fatalf("%s: segment files %v, want only %d", what, segs, off)
	}
}

func TestTruncateFullyAndStartAt(t *testing.T) {
	f := func(name string, off int64) {
		t.Helper()
		e := newEnv(t, nil)
		l := e.log("t", 0, LogConfig{SegmentBytes: 1 << 10, IndexIntervalBytes: 256})
		fillForTruncate(t, l)
		if segs, _ := dirFiles(t, e.fs, l.Dir()); len(segs) < 3 || len(l.Producers()) != 1 || len(l.Epochs()) != 2 {
			t.Fatalf("%s: fixture: segments %v, producers %d, epochs %v", name, segs, len(l.Producers()), l.Epochs())
		}
		if err := l.TruncateFullyAndStartAt(off); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if o := l.Offsets(); o != (Offsets{Start: off, End: off, Durable: off}) {
			t.Fatalf("%s: offsets %+v after truncating fully", name, o)
		}
		if sl, err := l.Read(off, 1<<20, -1); err != nil || sl.Len != 0 {
			t.Fatalf("%s: read at the new start: %+v %v", name, sl, err)
		}
		if segs, snaps := dirFiles(t, e.fs, l.Dir()); !slices.Equal(segs, []int64{off}) || !slices.Equal(snaps, []int64{off}) {
			t.Fatalf("%s: files: segments %v, snapshots %v; want only %d", name, segs, snaps, off)
		}
		if ec, err := loadEpochCache(e.fs, l.epochPath()); err != nil || len(ec.entries) != 0 {
			t.Fatalf("%s: leader-epoch-checkpoint holds %v (%v), want nothing", name, ec.entries, err)
		}
		if err := appendReplicaSync(t, l, replicaBatch(off, 3, 9)); err != nil {
			t.Fatalf("%s: replicated append at the new start: %v", name, err)
		}
		checkRestarted(t, name+", live", e.fs, l, off)
		e.reopen()
		checkRestarted(t, name+", reopened", e.fs, e.st.Log("t", 0), off)
		e.crash(vfs.DropUnsynced, nil)
		l = e.st.Log("t", 0)
		checkRestarted(t, name+", after a crash", e.fs, l, off)
		if r := appendSync(t, l, makeBatch(1, 10, 1, nil), 10); r.Err != nil || r.BaseOffset != off+3 {
			t.Fatalf("%s: leader append after: %+v", name, r)
		}
	}
	f("past the log end", 500)
	f("at the log end", 60)
	f("inside the active segment", 59)
	f("in the middle", 23)
	f("at zero", 0)
}

func TestTruncateFullyAtASegmentBase(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("t", 0, LogConfig{SegmentBytes: 1 << 10, IndexIntervalBytes: 256})
	fillForTruncate(t, l)
	segs, _ := dirFiles(t, e.fs, l.Dir())
	off := segs[1]
	if err := l.TruncateFullyAndStartAt(off); err != nil {
		t.Fatal(err)
	}
	if err := appendReplicaSync(t, l, replicaBatch(off, 3, 9)); err != nil {
		t.Fatal(err)
	}
	checkRestarted(t, "live", e.fs, l, off)
	e.crash(vfs.DropUnsynced, nil)
	checkRestarted(t, "after a crash", e.fs, e.st.Log("t", 0), off)
}

func TestTruncateFullyRefusesInFlight(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("t", 0, LogConfig{})
	fillForTruncate(t, l)
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	e.eng.BeforeDo = func([]ioring.Op) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-hold
	}
	done := make(chan AppendResult, 1)
	if _, err := l.Append(makeBatch(1, 10, 1, nil), 3, func(r AppendResult) { done <- r }); err != nil {
		t.Fatal(err)
	}
	<-entered
	if err := l.TruncateFullyAndStartAt(100); !errors.Is(err, ErrBusy) {
		close(hold)
		t.Fatalf("truncate with an append in flight: %v, want ErrBusy", err)
	}
	close(hold)
	if r := <-done; r.Err != nil || r.BaseOffset != 60 {
		t.Fatalf("the append in flight: %+v", r)
	}
	if o := l.Offsets(); o.Start != 0 || o.End != 61 {
		t.Fatalf("a refused truncation changed the log: %+v", o)
	}
	if err := l.TruncateFullyAndStartAt(100); err != nil {
		t.Fatal(err)
	}
	if o := l.Offsets(); o.Start != 100 || o.End != 100 {
		t.Fatalf("offsets %+v", o)
	}
}
