package segstore

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCleanupPolicyAndRetention(t *testing.T) {
	f := func(in string, want CleanupPolicy, ok bool) {
		t.Helper()
		got, err := ParseCleanupPolicy(in)
		if (err == nil) != ok || got != want {
			t.Errorf("%q: %v %v, want %v ok=%v", in, got, err, want, ok)
		}
	}
	f("delete", CleanupDelete, true)
	f("compact", CleanupCompact, true)
	f("compact,delete", CleanupCompact|CleanupDelete, true)
	f(" delete , compact ", CleanupCompact|CleanupDelete, true)
	f("", 0, false)
	f("compact,", 0, false)
	f("archive", 0, false)

	// compact alone: retention does not delete.
	e := compactEnv(t, nil)
	cfg := compactCfg(1 << 10)
	cfg.RetentionMs = time.Millisecond
	l := e.log("ret", 0, cfg)
	for i := 0; i < 20; i++ {
		appendSync(t, l, keyedBatch([]kv{rec(fmt.Sprint(i), "v")}, 1, nil, -1, 0), 0)
	}
	rollWith(t, l, 1)
	if n, err := l.EnforceRetention(e.now()); n != 0 || err != nil {
		t.Fatalf("retention on cleanup.policy=compact deleted %d: %v", n, err)
	}
	cfg.Cleanup |= CleanupDelete
	l.SetConfig(cfg)
	if n, err := l.EnforceRetention(e.now()); n == 0 || err != nil {
		t.Fatalf("retention on compact,delete deleted %d: %v", n, err)
	}
}

func TestCleanMinCompactionLag(t *testing.T) {
	e := compactEnv(t, nil)
	cfg := compactCfg(1 << 10)
	cfg.MinCompactionLagMs = time.Hour
	l := e.log("lag", 0, cfg)
	old := e.now().Add(-2 * time.Hour).UnixMilli()
	for i := 0; i < 40; i++ { // two hours old: cleanable
		appendSync(t, l, keyedBatch([]kv{rec("k", fmt.Sprint(i))}, old, nil, -1, 0), 0)
	}
	rollWith(t, l, old)
	young := e.now().UnixMilli()
	for i := 40; i < 80; i++ { // too young
		appendSync(t, l, keyedBatch([]kv{rec("k", fmt.Sprint(i))}, young, nil, -1, 0), 0)
	}
	rollWith(t, l, young)
	cleanAll(t, e.st)
	var below, above int
	for _, r := range readRecs(t, l) {
		if r.key != "k" {
			continue
		}
		if v, _ := strconv.Atoi(r.val); v < 40 {
			below++
		} else {
			above++
		}
	}
	// The old part keeps only its latest copy of k (the cleaner cannot see
	// past the lag); the young part is untouched.
	if below != 1 || above != 40 {
		t.Fatalf("min.compaction.lag.ms: %d old and %d young records of k left, want 1 and 40", below, above)
	}
	e.advance(2 * time.Hour)
	cleanAll(t, e.st)
	var ks []logRec
	for _, r := range readRecs(t, l) {
		if r.key == "k" {
			ks = append(ks, r)
		}
	}
	if len(ks) != 1 || ks[0].val != "79" {
		t.Fatalf("after the lag: %v", ks)
	}
}

func TestCleanDirtyRatio(t *testing.T) {
	e := compactEnv(t, nil)
	cfg := compactCfg(4 << 10)
	cfg.MinCleanableRatio = 0.5
	l := e.log("ratio", 0, cfg)
	ts := e.now().UnixMilli()
	for i := 0; i < 100; i++ { // 100 distinct keys: cleaning removes nothing
		appendSync(t, l, keyedBatch([]kv{rec(fmt.Sprintf("k%03d", i), "x")}, ts, nil, -1, 0), 0)
	}
	rollWith(t, l, ts)
	cleanAll(t, e.st)
	clean := l.Size()
	// About a third as many dirty bytes as clean ones: below the ratio.
	for i := 0; i < 30; i++ {
		appendSync(t, l, keyedBatch([]kv{rec(fmt.Sprintf("k%03d", i), "y")}, ts, nil, -1, 0), 0)
	}
	rollWith(t, l, ts)
	if _, ok, _ := e.st.Clean(); ok {
		t.Fatalf("cleaned at a dirty ratio below 0.5 (clean %d bytes, log %d)", clean, l.Size())
	}
	for i := 30; i < 100; i++ {
		appendSync(t, l, keyedBatch([]kv{rec(fmt.Sprintf("k%03d", i), "y")}, ts, nil, -1, 0), 0)
	}
	rollWith(t, l, ts)
	if st, ok, err := e.st.Clean(); !ok || err != nil {
		t.Fatalf("not cleaned above the ratio: %v", err)
	} else if st.RecordsRemoved != 100+1 { // the old values and the first roll record
		t.Fatalf("removed %d records, want 101", st.RecordsRemoved)
	}
	for _, r := range readRecs(t, l) {
		if r.key != "__roll" && r.val != "y" {
			t.Fatalf("stale value %v", r)
		}
	}
}

func TestCleanMaxCompactionLag(t *testing.T) {
	e := compactEnv(t, nil)
	cfg := compactCfg(1 << 20)
	cfg.MinCleanableRatio = 1 // never by ratio
	cfg.MaxCompactionLagMs = time.Hour
	l := e.log("maxlag", 0, cfg)
	for i := 0; i < 10; i++ {
		appendSync(t, l, keyedBatch([]kv{rec("k", fmt.Sprint(i))}, e.now().UnixMilli(), nil, -1, 0), 0)
	}
	// The active segment rolls once it is max.compaction.lag.ms old, though
	// segment.ms (7 days) is far off.
	e.advance(61 * time.Minute)
	appendSync(t, l, keyedBatch([]kv{rec("k", "10")}, e.now().UnixMilli(), nil, -1, 0), 0)
	if n := len(l.segs); n != 2 {
		t.Fatalf("%d segments, want a roll after max.compaction.lag.ms", n)
	}
	if _, ok, err := e.st.Clean(); !ok || err != nil {
		t.Fatalf("max.compaction.lag.ms passed but no pass: %v", err)
	}
	if recs := readRecs(t, l); len(recs) != 2 {
		t.Fatalf("records %v", recs)
	}
}

func TestCompactedLogRefusesKeylessRecords(t *testing.T) {
	e := compactEnv(t, nil)
	l := e.log("nokey", 0, compactCfg(0))
	gz := kgo.GzipCompression()
	for _, b := range [][]byte{
		keyedBatch([]kv{{val: "x"}}, 1, nil, -1, 0),
		keyedBatch([]kv{rec("k", "v"), {val: "x"}}, 1, &gz, -1, 0),
	} {
		if _, err := l.Append(b, 0, nil); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("keyless record on a compacted log: %v, want ErrInvalidRecord", err)
		}
	}
	if r := appendSync(t, l, keyedBatch([]kv{rec("k", "v")}, 1, &gz, -1, 0), 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	// Keyless records written before the policy changed stay.
	l.SetConfig(LogConfig{SegmentBytes: 1 << 10})
	if r := appendSync(t, l, keyedBatch([]kv{{val: "x"}, {val: "y"}}, 1, nil, -1, 0), 0); r.Err != nil {
		t.Fatalf("delete policy refuses keyless: %v", r.Err)
	}
	l.SetConfig(compactCfg(1 << 10))
	rollWith(t, l, 1)
	cleanAll(t, e.st)
	if recs := readRecs(t, l); len(recs) != 4 || recs[1].hasKey || recs[2].hasKey {
		t.Fatalf("records %v", recs)
	}
}
