package segstore

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// truncFullFixture writes fillForTruncate's log on fs, arms it, truncates
// the log fully at off and closes the store. It returns the batches as
// written, by base offset.
func truncFullFixture(t *testing.T, fs *stepFS, off int64) map[int64][]byte {
	t.Helper()
	return armedFixture(t, fs, "tf", func(l *Log) error { return l.TruncateFullyAndStartAt(off) })
}

// armedFixture writes fillForTruncate's log topic-0 on fs (several 1 KiB
// segments), arms fs, runs op on the log, disarms and closes the store. It
// returns the batches as written, by base offset.
func armedFixture(t *testing.T, fs *stepFS, topic string, op func(*Log) error) map[int64][]byte {
	t.Helper()
	st, err := Open(quietConfig(fs, func() time.Time { return time.UnixMilli(1_700_000_000_000) }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.CreateLog(topic, 0, LogConfig{SegmentBytes: 1 << 10, IndexIntervalBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	fillForTruncate(t, l)
	if len(l.segs) < 3 {
		t.Fatalf("fixture has %d segments, want several", len(l.segs))
	}
	orig := map[int64][]byte{}
	for _, b := range readAll(t, l) {
		orig[parseHeader(b).BaseOffset] = b
	}
	fs.mu.Lock()
	fs.armed = true
	fs.mu.Unlock()
	if err := op(l); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	fs.armed = false
	fs.mu.Unlock()
	return orig
}

// TestTruncateFullyCrashAtEveryStep cuts the power before each file-system
// step of TruncateFullyAndStartAt and checks what recovery makes of it: the
// log either is the old one (or a prefix of it, when off is inside it: the
// segments reaching off go first, newest first) or ends
// at off, holding below it only batches as they were written, over a gap;
// once the new start is checkpointed it starts at off. Every state takes a
// replicated append at its end. Both a start past the log end (the
// follower's case) and one inside the log are cut.
func TestTruncateFullyCrashAtEveryStep(t *testing.T) {
	f := func(off int64) {
		t.Helper()
		probe := &stepFS{MemFS: vfs.NewMem()}
		truncFullFixture(t, probe, off)
		steps := probe.n
		if steps < 5 {
			t.Fatalf("off %d: truncating fully took only %d steps", off, steps)
		}
		gap, restarted, old := 0, 0, 0
		for _, mode := range []vfs.CrashMode{vfs.DropUnsynced, vfs.TornTail} {
			for target := 1; target <= steps+1; target++ {
				what := fmt.Sprintf("off %d, mode %d, crash before step %d of %d", off, mode, target, steps)
				fs := &stepFS{MemFS: vfs.NewMem(), target: target, mode: mode, rng: rand.New(rand.NewSource(int64(target)))}
				orig := truncFullFixture(t, fs, off)
				snap := fs.snap
				if target == steps+1 {
					snap = fs.MemFS.CrashClone(mode, fs.rng) // every step done (and the store closed)
				}
				if snap == nil {
					t.Fatalf("%s: the step never came", what)
				}
				switch checkTruncFullCrash(t, what, snap, orig, off) {
				case "gap":
					gap++
				case "restarted":
					restarted++
				default:
					old++
				}
				if target == steps+1 && fs.snap != nil {
					t.Fatalf("%s: more steps than the probe counted", what)
				}
			}
		}
		if gap == 0 || restarted == 0 || old == 0 {
			t.Fatalf("off %d: crash states: %d old, %d old below a gap, %d restarted; want each", off, old, gap, restarted)
		}
		t.Logf("off %d: %d steps; crash states: %d old, %d old below a gap, %d restarted", off, steps, old, gap, restarted)
	}
	f(500)
	f(23)
}

// checkTruncFullCrash opens what a crash left and says which state it is:
// "old" (a prefix of the old log), "gap" (old batches below a gap, the end
// at off) or "restarted" (the log starts and ends at off).
func checkTruncFullCrash(t *testing.T, what string, fs *vfs.MemFS, orig map[int64][]byte, off int64) string {
	t.Helper()
	st, err := Open(quietConfig(fs, func() time.Time { return time.UnixMilli(1_700_000_000_000) }))
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	defer st.Close()
	l := st.Log("tf", 0)
	o := l.Offsets()
	batches := readUpToGap(t, l)
	next := o.Start
	for _, b := range batches {
		h := parseHeader(b)
		if !bytes.Equal(orig[h.BaseOffset], b) {
			t.Fatalf("%s: batch at %d is not the one written there", what, h.BaseOffset)
		}
		if h.BaseOffset != next && o.End != off {
			t.Fatalf("%s: the old log has a hole at %d (offsets %+v)", what, next, o)
		}
		next = h.LastOffset() + 1
	}
	for _, e := range l.Epochs() {
		if e.StartOffset < o.Start || e.StartOffset > o.End {
			t.Fatalf("%s: epoch entry %v outside the log %+v", what, e, o)
		}
	}
	state := "old"
	switch {
	case o.End == off && o.Start == off:
		state = "restarted"
		if len(batches) != 0 {
			t.Fatalf("%s: a log restarted at %d serves %d batches", what, off, len(batches))
		}
	case o.End == off && len(batches) > 0 && next < off:
		state = "gap"
	case o.End == off:
		t.Fatalf("%s: the log ends at %d but its start %d is not", what, off, o.Start)
	case o.End > 60 || o.End < 60 && off >= 60 || next != o.End:
		t.Fatalf("%s: offsets %+v are neither the old log's (a prefix, for a start inside it) nor %d", what, o, off)
	}
	if err := appendReplicaSync(t, l, replicaBatch(o.End, 3, 9)); err != nil {
		t.Fatalf("%s: replicated append at %d: %v", what, o.End, err)
	}
	if got := readUpToGap(t, l); len(got) == 0 || !bytes.Equal(got[len(got)-1], replicaBatch(o.End, 3, 9)) {
		t.Fatalf("%s: the replicated batch does not read back", what)
	}
	return state
}

// readUpToGap is readAll for a log that may end in a gap: it stops at the
// first read past the start that finds nothing.
func readUpToGap(t *testing.T, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	o := l.Offsets()
	for off := o.Start; off < o.End; {
		buf, err := l.ReadCopy(off, 1<<20, -1, nil)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(buf) == 0 {
			break
		}
		for len(buf) >= batchHeaderSize {
			h := parseHeader(buf)
			if h.Size() > int64(len(buf)) {
				break
			}
			out = append(out, buf[:h.Size()])
			off = h.LastOffset() + 1
			buf = buf[h.Size():]
		}
	}
	return out
}
