package segstore

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// TestTruncateToCrashAtEveryStep cuts the power before each file-system step
// of a TruncateTo that drops whole segments and cuts another, and checks that
// recovery always finds a contiguous prefix of the old log: never the cut
// segment followed, over a hole, by segments that were to go (their batches
// would come back above the new end).
func TestTruncateToCrashAtEveryStep(t *testing.T) {
	const cut = 23
	fixture := func(fs *stepFS) map[int64][]byte {
		t.Helper()
		return armedFixture(t, fs, "tt", func(l *Log) error { return l.TruncateTo(cut) })
	}
	probe := &stepFS{MemFS: vfs.NewMem()}
	fixture(probe)
	steps := probe.n
	for _, mode := range []vfs.CrashMode{vfs.DropUnsynced, vfs.TornTail} {
		for target := 1; target <= steps+1; target++ {
			what := fmt.Sprintf("mode %d, crash before step %d of %d", mode, target, steps)
			fs := &stepFS{MemFS: vfs.NewMem(), target: target, mode: mode, rng: rand.New(rand.NewSource(int64(target)))}
			orig := fixture(fs)
			snap := fs.snap
			if target == steps+1 {
				snap = fs.MemFS.CrashClone(mode, fs.rng)
			}
			if snap == nil {
				t.Fatalf("%s: the step never came", what)
			}
			st, err := Open(quietConfig(snap, func() time.Time { return time.UnixMilli(1_700_000_000_000) }))
			if err != nil {
				t.Fatalf("%s: reopen: %v", what, err)
			}
			l := st.Log("tt", 0)
			o := l.Offsets()
			next := o.Start
			for _, b := range readUpToGap(t, l) {
				h := parseHeader(b)
				if h.BaseOffset != next {
					t.Fatalf("%s: hole at %d, next batch at %d (offsets %+v): cut-away batches came back", what, next, h.BaseOffset, o)
				}
				if !bytes.Equal(orig[h.BaseOffset], b) {
					t.Fatalf("%s: batch at %d is not the one written there", what, h.BaseOffset)
				}
				next = h.LastOffset() + 1
			}
			if next != o.End {
				t.Fatalf("%s: batches end at %d but the log at %d", what, next, o.End)
			}
			st.Close()
		}
	}
}
