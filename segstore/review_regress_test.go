package segstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// Regression tests from the review of idempotent producers and compaction.

// TestTruncateToInCompactionGap: truncating to an offset inside a gap that
// compaction left ends the log at that offset, not at the next batch after
// the gap (which would skip the offsets between on the next append).
func TestTruncateToInCompactionGap(t *testing.T) {
	f := func(name string, to, wantEnd int64) {
		t.Helper()
		e := compactEnv(t, nil)
		l := e.log("g", 0, compactCfg(1<<10))
		ts := e.now().UnixMilli()
		for i := 0; i < 10; i++ { // offsets 0-9: key a, gone after cleaning
			appendSync(t, l, keyedBatch([]kv{rec("a", fmt.Sprint(i))}, ts, nil, -1, 0), 0)
		}
		appendSync(t, l, keyedBatch([]kv{rec("b", "b"), rec("c", "c")}, ts, nil, -1, 0), 0) // 10-11
		appendSync(t, l, keyedBatch([]kv{rec("a", "last")}, ts, nil, -1, 0), 0)             // 12
		rollWith(t, l, ts)
		cleanAll(t, e.st)
		if err := l.TruncateTo(to); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := l.Offsets().End; got != wantEnd {
			t.Fatalf("%s: TruncateTo(%d) left the log ending at %d, want %d", name, to, got, wantEnd)
		}
		if r := appendSync(t, l, keyedBatch([]kv{rec("d", "d")}, ts, nil, -1, 0), 0); r.Err != nil || r.BaseOffset != wantEnd {
			t.Fatalf("%s: append after the truncation: %+v, want base %d", name, r, wantEnd)
		}
	}
	f("in the gap", 5, 5)
	f("at the gap's start", 0, 0)
	f("straddled batch goes whole", 11, 10)
	f("at a batch", 12, 12)
}

// TestRetentionOnCompactedLogKeepsRecordsWithoutTimestamps: on a
// compact,delete log a segment whose records carry no timestamp (-1) is not
// deleted by retention.ms at once — only one compaction left without any
// record is — also after a clean restart and after a crash.
func TestRetentionOnCompactedLogKeepsRecordsWithoutTimestamps(t *testing.T) {
	e := compactEnv(t, nil)
	cfg := compactCfg(1 << 10)
	cfg.Cleanup |= CleanupDelete
	cfg.RetentionMs = 7 * 24 * time.Hour
	l := e.log("ret", 0, cfg)
	for i := 0; i < 20; i++ {
		appendSync(t, l, keyedBatch([]kv{rec(fmt.Sprint(i), "v")}, -1, nil, -1, 0), 0)
	}
	rollWith(t, l, e.now().UnixMilli())
	check := func(stage string) {
		t.Helper()
		l := e.st.Log("ret", 0)
		l.SetConfig(cfg)
		if n, err := l.EnforceRetention(e.now()); n != 0 || err != nil {
			t.Fatalf("%s: retention deleted %d segments (%v) of records written just now", stage, n, err)
		}
		if got := len(readRecs(t, l)); got != 21 {
			t.Fatalf("%s: %d records, want 21", stage, got)
		}
	}
	check("live")
	e.reopen()
	check("after a clean restart")
	e.crash(vfs.DropUnsynced, nil)
	check("after a crash")

	// A segment compaction emptied goes, and does not hold back the rest.
	l = e.log("emptied", 0, cfg)
	ts := e.now().UnixMilli()
	for i := 0; i < 20; i++ {
		appendSync(t, l, keyedBatch([]kv{rec("x", fmt.Sprint(i))}, ts, nil, -1, 0), 0)
	}
	rollWith(t, l, ts)
	appendSync(t, l, keyedBatch([]kv{rec("x", "last")}, ts, nil, -1, 0), 0)
	rollWith(t, l, ts)
	cleanAll(t, e.st)
	before := readRecs(t, l)
	l.mu.Lock()
	emptied := 0
	for emptied < len(l.segs)-1 && !l.segs[emptied].hasRecords {
		emptied++
	}
	l.mu.Unlock()
	if emptied == 0 {
		t.Fatal("compaction emptied no segment; the test proves nothing")
	}
	if n, err := l.EnforceRetention(e.now()); n != emptied || err != nil {
		t.Fatalf("retention deleted %d segments (%v), want the %d emptied ones", n, err, emptied)
	}
	if got := readRecs(t, l); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("records changed: %v, want %v", got, before)
	}
}

// retireFailFS fails the rename of a cleaned group's old segment (other
// than the group's first) to .deleted, once armed.
type retireFailFS struct {
	*vfs.MemFS
	mu     sync.Mutex
	armed  bool
	failed int
}

func (f *retireFailFS) Rename(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.armed && strings.HasSuffix(newname, ".log"+deletedSuffix) {
		dir := oldname[:strings.LastIndexByte(oldname, '/')]
		base, _ := parseSegName(oldname[len(dir)+1:])
		names, _ := f.MemFS.ReadDir(dir)
		for _, n := range names {
			if b, ok := parseSegName(strings.TrimSuffix(n, swapSuffix)); ok && strings.HasSuffix(n, swapSuffix) && b < base {
				f.failed++
				return errors.New("injected rename failure")
			}
		}
	}
	return f.MemFS.Rename(oldname, newname)
}

// TestSwapStopsWhenRetiringOldSegmentsFails: if an old segment of a cleaned
// group cannot be renamed away, the cleaned copy must not take its final
// name next to it (the next open would see two segments claiming the same
// offsets and drop everything after the overlap); recovery finishes the
// swap instead, and nothing is lost.
func TestSwapStopsWhenRetiringOldSegmentsFails(t *testing.T) {
	fs := &retireFailFS{MemFS: vfs.NewMem()}
	clock := time.UnixMilli(1_700_000_000_000)
	st, err := Open(quietConfig(fs, func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.CreateLog("swap", 0, compactCfg(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	// Every sixth record has a key of its own and stays; the rest share
	// one, so cleaned segments are small but not empty.
	write := func(from, to int) {
		for i := from; i < to; i++ {
			k := "hot"
			if i%6 == 0 {
				k = fmt.Sprintf("u%03d", i)
			}
			if r := appendSync(t, l, keyedBatch([]kv{rec(k, fmt.Sprintf("v%d", i))}, clock.UnixMilli(), nil, -1, 0), 0); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		rollWith(t, l, clock.UnixMilli())
	}
	// A first pass leaves small cleaned segments; the second merges them.
	write(0, 120)
	cleanAll(t, st)
	write(120, 180)
	for i := 180; i < 190; i++ { // in the active segment, after every group
		appendSync(t, l, keyedBatch([]kv{rec(fmt.Sprintf("tail%d", i), "t")}, clock.UnixMilli(), nil, -1, 0), 0)
	}
	want, end := fmt.Sprint(latestByKey(readRecs(t, l))), l.Offsets().End
	fs.mu.Lock()
	fs.armed = true
	fs.mu.Unlock()
	if _, _, err := st.Clean(); err == nil {
		t.Fatal("the pass succeeded although an old segment could not be retired")
	}
	fs.mu.Lock()
	fs.armed = false
	failed := fs.failed
	fs.mu.Unlock()
	if failed == 0 {
		t.Fatal("no group of two segments was swapped; the test proves nothing")
	}
	if l.Err() == nil {
		t.Fatal("the log serves on after a half-finished swap")
	}
	st.Close() // fails: the log's error is sticky
	st, err = Open(quietConfig(fs.MemFS, func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l = st.Log("swap", 0)
	if got := l.Offsets().End; got != end {
		t.Fatalf("log ends at %d after recovery, want %d", got, end)
	}
	if got := fmt.Sprint(latestByKey(readRecs(t, l))); got != want {
		t.Fatalf("records lost:\n got %s\nwant %s", got, want)
	}
}

// orderFS records the directory operations under a partition directory.
type orderFS struct {
	*vfs.MemFS
	mu  sync.Mutex
	ops []string
}

func (f *orderFS) note(op string) {
	f.mu.Lock()
	f.ops = append(f.ops, op)
	f.mu.Unlock()
}
func (f *orderFS) Remove(name string) error { f.note("remove " + name); return f.MemFS.Remove(name) }
func (f *orderFS) Rename(o, n string) error { f.note("rename " + o); return f.MemFS.Rename(o, n) }
func (f *orderFS) SyncDir(dir string) error { f.note("syncdir"); return f.MemFS.SyncDir(dir) }

// TestCompleteSwapSyncsRemovalsFirst: recovery removes the old segments a
// cleaned swap replaces and makes that durable before the swap takes its
// final name, so that no crash can leave both.
func TestCompleteSwapSyncsRemovalsFirst(t *testing.T) {
	fs := &orderFS{MemFS: vfs.NewMem()}
	dir := "/d"
	fs.MkdirAll(dir)
	put := func(name string, data []byte) {
		f, err := fs.MemFS.Create(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(data, 0)
		f.Sync()
		f.Close()
	}
	b0 := keyedBatch([]kv{rec("a", "1")}, 1, nil, -1, 0)
	b1 := keyedBatch([]kv{rec("b", "1")}, 1, nil, -1, 0)
	stampOffsets(b1, 5, 0)
	put(fmt.Sprintf("%020d.log", 0), b0)
	put(fmt.Sprintf("%020d.log", 5), b1)
	put(fmt.Sprintf("%020d.log.swap", 0), append(append([]byte(nil), b0...), b1...))
	if err := completeSwap(fs, dir, 0); err != nil {
		t.Fatal(err)
	}
	removed, synced := -1, -1
	for i, op := range fs.ops {
		switch {
		case strings.HasPrefix(op, "remove ") && strings.HasSuffix(op, fmt.Sprintf("%020d.log", 5)):
			removed = i
		case op == "syncdir" && removed >= 0 && synced < 0:
			synced = i
		case strings.HasPrefix(op, "rename ") && strings.HasSuffix(op, ".log.swap"):
			if removed < 0 || synced < 0 {
				t.Fatalf("the swap took its name before the replaced segment's removal was synced: %v", fs.ops)
			}
			return
		}
	}
	t.Fatalf("no rename of the swap: %v", fs.ops)
}
