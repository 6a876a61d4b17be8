package segstore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
)

// stepFS counts the file system's mutations while armed and, at step
// target, takes what a power cut would leave (MemFS.CrashClone) before
// running that step: a crash between any two steps of whatever runs.
type stepFS struct {
	*vfs.MemFS
	mu     sync.Mutex
	armed  bool
	n      int
	target int
	mode   vfs.CrashMode
	rng    *rand.Rand
	snap   *vfs.MemFS
	// onCreate, if set, runs before each Create.
	onCreate func(name string)
}

func (f *stepFS) step() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return
	}
	if f.n++; f.n == f.target {
		f.snap = f.MemFS.CrashClone(f.mode, f.rng)
	}
}

func (f *stepFS) Create(name string) (vfs.File, error) {
	if f.onCreate != nil {
		f.onCreate(name)
	}
	f.step()
	file, err := f.MemFS.Create(name)
	if err != nil {
		return nil, err
	}
	return stepFile{file, f}, nil
}

func (f *stepFS) OpenRW(name string) (vfs.File, error) {
	file, err := f.MemFS.OpenRW(name)
	if err != nil {
		return nil, err
	}
	return stepFile{file, f}, nil
}

func (f *stepFS) Remove(name string) error    { f.step(); return f.MemFS.Remove(name) }
func (f *stepFS) RemoveAll(name string) error { f.step(); return f.MemFS.RemoveAll(name) }
func (f *stepFS) Rename(oldname, newname string) error {
	f.step()
	return f.MemFS.Rename(oldname, newname)
}
func (f *stepFS) SyncDir(dir string) error { f.step(); return f.MemFS.SyncDir(dir) }

type stepFile struct {
	vfs.File
	fs *stepFS
}

func (f stepFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.step()
	return f.File.WriteAt(p, off)
}
func (f stepFile) Sync() error            { f.fs.step(); return f.File.Sync() }
func (f stepFile) Truncate(n int64) error { f.fs.step(); return f.File.Truncate(n) }

func quietConfig(fs vfs.FS, now func() time.Time) Config {
	return Config{Dir: "/data", FS: fs, Engine: ioring.NewFake(), Now: now, Cleaner: CleanerConfig{Disable: true},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// crashFixture writes a log with duplicates, tombstones (some due), several
// producers and several segment groups, arms fs and runs one cleaning
// pass. It returns the records as written.
func crashFixture(t *testing.T, fs *stepFS) []logRec {
	t.Helper()
	clock := time.UnixMilli(1_700_000_000_000)
	st, err := Open(quietConfig(fs, func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := compactCfg(1 << 10)
	cfg.DeleteRetentionMs = time.Hour
	l, err := st.CreateLog("crash", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(9))
	old := clock.Add(-2 * time.Hour).UnixMilli()
	seqs := map[int64]int32{}
	write := func(from, to, firstKey, keys int) {
		for i := from; i < to; i++ {
			var recs []kv
			for j := 0; j < 1+rng.Intn(3); j++ {
				k := fmt.Sprintf("k%02d", firstKey+rng.Intn(keys))
				if rng.Intn(4) == 0 {
					recs = append(recs, tombstone(k))
				} else {
					recs = append(recs, rec(k, fmt.Sprintf("v%d.%d", i, j)))
				}
			}
			ts := old
			if i >= 175 {
				ts = clock.UnixMilli() // tombstones here are not due yet
			}
			pid, seq := int64(-1), int32(0)
			if i%3 == 0 {
				pid = int64(i % 2)
				seq = seqs[pid]
				seqs[pid] += int32(len(recs))
			}
			if r := appendSync(t, l, keyedBatch(recs, ts, nil, pid, seq), 0); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		rollWith(t, l, clock.UnixMilli())
	}
	// A first pass leaves small cleaned segments, which the second one
	// (the one crashed) merges in groups; half their keys are not written
	// again, so the merged segments keep records from each of them.
	write(0, 120, 0, 30)
	cleanAll(t, st)
	write(120, 180, 0, 15)
	orig := readRecs(t, l)
	fs.mu.Lock()
	fs.armed = true
	fs.mu.Unlock()
	stats, ok, err := st.Clean()
	if !ok || err != nil {
		t.Fatalf("clean: %v %v", ok, err)
	}
	if stats.SegmentsIn <= stats.SegmentsOut || stats.TombstonesRemoved == 0 {
		t.Fatalf("the pass merged no segments or removed no tombstone: %+v", stats)
	}
	fs.mu.Lock()
	fs.armed = false
	fs.mu.Unlock()
	return orig
}

// TestCleanCrashAtEveryStep cuts the power before each file-system step of
// a cleaning pass (creates, writes, fsyncs, renames, removals, directory
// syncs) and checks that what recovery makes of it is a valid log: every
// batch whole and CRC-correct, offsets rising with none twice, each record
// the one written at its offset, and for every key the same latest value
// (or deletion) as before cleaning; then that it takes appends and cleans.
func TestCleanCrashAtEveryStep(t *testing.T) {
	probe := &stepFS{MemFS: vfs.NewMem()}
	crashFixture(t, probe)
	steps := probe.n
	if steps < 20 {
		t.Fatalf("a pass took only %d steps", steps)
	}
	seen := map[string]int{} // crash states by what they left to recover
	for _, mode := range []vfs.CrashMode{vfs.DropUnsynced, vfs.TornTail} {
		for target := 1; target <= steps; target++ {
			fs := &stepFS{MemFS: vfs.NewMem(), target: target, mode: mode, rng: rand.New(rand.NewSource(int64(target)))}
			orig := crashFixture(t, fs)
			if fs.snap == nil {
				t.Fatalf("step %d of %d never came", target, steps)
			}
			names, _ := fs.snap.ReadDir("/data/crash-0")
			for _, suffix := range []string{cleanedSuffix, swapSuffix, deletedSuffix} {
				for _, n := range names {
					if strings.HasSuffix(n, suffix) {
						seen[suffix]++
						break
					}
				}
			}
			checkCrashed(t, fmt.Sprintf("mode %d, crash before step %d of %d", mode, target, steps), fs.snap, orig)
		}
	}
	if seen[cleanedSuffix] == 0 || seen[swapSuffix] == 0 || seen[deletedSuffix] == 0 {
		t.Fatalf("the crash points missed a stage of the swap: %v", seen)
	}
	t.Logf("%d steps; crash states with files left over: %v", steps, seen)
}

func checkCrashed(t *testing.T, what string, fs *vfs.MemFS, orig []logRec) {
	t.Helper()
	st, err := Open(quietConfig(fs, func() time.Time { return time.UnixMilli(1_700_000_000_000) }))
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	defer st.Close()
	l := st.Log("crash", 0)
	byOff := map[int64]logRec{}
	for _, r := range orig {
		byOff[r.off] = r
	}
	check := func(stage string) {
		t.Helper()
		got := readRecs(t, l) // fails on torn or overlapping batches
		for _, r := range got {
			if want, ok := byOff[r.off]; !ok || want != r {
				t.Fatalf("%s, %s: offset %d holds %v, was written as %v", what, stage, r.off, r, want)
			}
		}
		if a, b := fmt.Sprint(latestByKey(got)), fmt.Sprint(latestByKey(orig)); a != b {
			t.Fatalf("%s, %s: keys regressed:\n got %s\nwant %s", what, stage, a, b)
		}
	}
	check("after recovery")
	cfg := compactCfg(1 << 10) // logs opened from disk run Config.Defaults until configured
	cfg.DeleteRetentionMs = time.Hour
	l.SetConfig(cfg)
	cleanAll(t, st)
	check("cleaned again")
	keys := map[string]bool{}
	for _, r := range readRecs(t, l) {
		if r.off < l.CleanedTo() && keys[r.key] {
			t.Fatalf("%s: key %s twice below the cleaner checkpoint %d after cleaning", what, r.key, l.CleanedTo())
		}
		keys[r.key] = true
	}
	end := l.Offsets().End
	if r := appendSync(t, l, keyedBatch([]kv{rec("k00", "after")}, 1, nil, -1, 0), 0); r.Err != nil || r.BaseOffset != end {
		t.Fatalf("%s: append after recovery: %+v, want base %d", what, r, end)
	}
}

// TestCleanAbortedByTruncate: a truncation during a cleaning pass stops the
// pass (rather than waiting for it, or racing its renames) and leaves no
// cleaner files behind; the truncated log is whole and cleans later.
func TestCleanAbortedByTruncate(t *testing.T) {
	fs := &stepFS{MemFS: vfs.NewMem()}
	st, err := Open(quietConfig(fs, time.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.CreateLog("abort", 0, compactCfg(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		appendSync(t, l, keyedBatch([]kv{rec(fmt.Sprint(i%10), fmt.Sprint(i))}, 1, nil, -1, 0), 0)
	}
	rollWith(t, l, 1)
	truncated := make(chan error, 1)
	var once sync.Once
	fs.onCreate = func(name string) {
		if !strings.HasSuffix(name, ".log"+cleanedSuffix) {
			return
		}
		once.Do(func() {
			go func() { truncated <- l.TruncateTo(150) }()
			for l.cl.abort.Load() == 0 { // TruncateTo asked the pass to stop
				time.Sleep(time.Millisecond)
			}
		})
	}
	if _, ok, err := st.Clean(); ok || !errors.Is(err, ErrCleanAborted) {
		t.Fatalf("pass during a truncation: ok=%v err=%v, want aborted", ok, err)
	}
	if err := <-truncated; err != nil {
		t.Fatal(err)
	}
	fs.onCreate = nil
	names, _ := fs.ReadDir("/data/abort-0")
	for _, n := range names {
		if strings.HasSuffix(n, cleanedSuffix) || strings.HasSuffix(n, swapSuffix) {
			t.Fatalf("%s left behind", n)
		}
	}
	if o := l.Offsets(); o.End != 150 || len(readRecs(t, l)) != 150 {
		t.Fatalf("after truncation: %+v", o)
	}
	rollWith(t, l, 1)
	if cleanAll(t, st) == 0 || len(readRecs(t, l)) != 11 {
		t.Fatalf("not cleaned after the truncation: %v", readRecs(t, l))
	}
}
