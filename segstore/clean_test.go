package segstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// writeKeyed appends n records over keys distinct keys, batch records per
// batch, and returns the value of each offset and the latest offset of
// each key.
func writeKeyed(t *testing.T, l *Log, n, keys, batch int, ts int64, codec *kgo.CompressionCodec, rng *rand.Rand) (map[int64]logRec, map[string]int64) {
	t.Helper()
	all := map[int64]logRec{}
	latest := map[string]int64{}
	for i := 0; i < n; i += batch {
		var recs []kv
		for j := i; j < min(i+batch, n); j++ {
			k := fmt.Sprintf("k%04d", rng.Intn(keys))
			recs = append(recs, rec(k, fmt.Sprintf("v%d", j)))
		}
		r := appendSync(t, l, keyedBatch(recs, ts, codec, -1, 0), 0)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		for d, x := range recs {
			off := r.BaseOffset + int64(d)
			all[off] = logRec{off: off, key: *x.key, hasKey: true, val: x.val}
			latest[*x.key] = off
		}
	}
	return all, latest
}

// checkCompacted: exactly one record per key below the cleaner checkpoint,
// the latest, at its original offset, and the same values as the original
// everywhere.
func checkCompacted(t *testing.T, l *Log, all map[int64]logRec, latest map[string]int64) {
	t.Helper()
	recs := readRecs(t, l)
	clean := l.CleanedTo()
	seen := map[string]bool{}
	for _, r := range recs {
		if r.key == "__roll" {
			continue
		}
		want, ok := all[r.off]
		if !ok || want != r {
			t.Fatalf("offset %d holds %v, was written as %v", r.off, r, want)
		}
		if r.off < clean {
			if seen[r.key] {
				t.Fatalf("key %s twice below the cleaner checkpoint %d", r.key, clean)
			}
			if latest[r.key] != r.off {
				t.Fatalf("key %s: kept offset %d, its latest is %d", r.key, r.off, latest[r.key])
			}
			seen[r.key] = true
		}
	}
	if len(seen) != len(latest) {
		t.Fatalf("%d keys survive, %d were written", len(seen), len(latest))
	}
}

func TestCleanKeepsLatestPerKey(t *testing.T) {
	e := compactEnv(t, nil)
	l := e.log("c", 0, compactCfg(64<<10))
	all, latest := writeKeyed(t, l, 100_000, 1000, 100, e.now().UnixMilli(), nil, rand.New(rand.NewSource(1)))
	rollWith(t, l, e.now().UnixMilli())
	before := l.Size()
	start := time.Now()
	if n := cleanAll(t, e.st); n != 1 {
		t.Errorf("%d passes, want 1 (everything fits the default dedupe buffer)", n)
	}
	t.Logf("cleaned %d bytes to %d in %v", before, l.Size(), time.Since(start))
	if got := len(readRecs(t, l)); got != 1001 {
		t.Errorf("%d records after cleaning, want 1000 keys + the roll record", got)
	}
	checkCompacted(t, l, all, latest)
	if o := l.Offsets(); o.Start != 0 || o.End != 100_001 {
		t.Fatalf("offsets moved: %+v", o)
	}
	s := e.st.CleanerStats()
	if s.Runs != 1 || s.RecordsRemoved != 99_000 || s.BytesWritten == 0 || s.BytesRead < s.BytesWritten {
		t.Fatalf("stats %+v", s)
	}
	// Same after a clean restart and after a crash (recovery scans the
	// cleaned segments: gaps and all).
	e.reopen()
	checkCompacted(t, e.st.Log("c", 0), all, latest)
	e.crash(0, nil)
	l = e.st.Log("c", 0)
	checkCompacted(t, l, all, latest)
	if l.CleanedTo() == 0 {
		t.Fatal("cleaner checkpoint lost across restarts")
	}
	// The log takes appends where it ended.
	if r := appendSync(t, l, keyedBatch([]kv{rec("k0001", "new")}, 1, nil, -1, 0), 0); r.Err != nil || r.BaseOffset != 100_001 {
		t.Fatalf("append after cleaning: %+v", r)
	}
}

func TestCleanReadInGap(t *testing.T) {
	e := compactEnv(t, nil)
	l := e.log("g", 0, compactCfg(1<<10))
	ts := e.now().UnixMilli()
	// Offsets 0-9 all of key a, then b at 10, then a at 11: a gap 0..9.
	for i := 0; i < 10; i++ {
		appendSync(t, l, keyedBatch([]kv{rec("a", fmt.Sprint(i))}, ts, nil, -1, 0), 0)
	}
	appendSync(t, l, keyedBatch([]kv{rec("b", "b")}, ts, nil, -1, 0), 0)
	appendSync(t, l, keyedBatch([]kv{rec("a", "last")}, ts, nil, -1, 0), 0)
	rollWith(t, l, ts)
	cleanAll(t, e.st)
	f := func(offset int64, wantFirst int64) {
		t.Helper()
		buf, err := l.ReadCopy(offset, 1, -1, nil)
		if err != nil {
			t.Fatalf("read at %d: %v", offset, err)
		}
		if len(buf) == 0 {
			t.Fatalf("read at %d: nothing", offset)
		}
		if h := parseHeader(buf); h.LastOffset() != wantFirst {
			t.Fatalf("read at %d: first batch ends at %d, want %d", offset, h.LastOffset(), wantFirst)
		}
	}
	f(0, 10)
	f(5, 10)
	f(10, 10)
	f(11, 11)
	if got := readRecs(t, l); len(got) != 3 || got[0].off != 10 || got[1].off != 11 {
		t.Fatalf("records %v", got)
	}
	// A bound inside the gap: nothing to read below it past offset 3.
	if sl, err := l.Read(3, 100, 8); err != nil || sl.Len != 0 {
		t.Fatalf("read [3, 8): %v, %d bytes", err, sl.Len)
	}
}

func TestCleanTombstones(t *testing.T) {
	e := compactEnv(t, nil)
	cfg := compactCfg(2 << 10)
	cfg.DeleteRetentionMs = time.Hour
	l := e.log("tomb", 0, cfg)
	ts := e.now().UnixMilli()
	for i := 0; i < 50; i++ {
		appendSync(t, l, keyedBatch([]kv{rec(fmt.Sprintf("k%d", i%10), fmt.Sprint(i))}, ts, nil, -1, 0), 0)
	}
	for i := 0; i < 5; i++ {
		appendSync(t, l, keyedBatch([]kv{tombstone(fmt.Sprintf("k%d", i))}, ts, nil, -1, 0), 0)
	}
	rollWith(t, l, ts)
	want := latestByKey(readRecs(t, l))
	count := func() (tombs, vals int) {
		for _, r := range readRecs(t, l) {
			if r.key == "__roll" {
				continue
			}
			if r.tomb {
				tombs++
			} else {
				vals++
			}
		}
		return
	}
	cleanAll(t, e.st)
	if tombs, vals := count(); tombs != 5 || vals != 5 {
		t.Fatalf("before delete.retention.ms: %d tombstones, %d values; want 5 and 5", tombs, vals)
	}
	e.advance(30 * time.Minute)
	if _, ok, _ := e.st.Clean(); ok {
		t.Fatal("a pass ran with nothing dirty and no tombstone due")
	}
	e.advance(31 * time.Minute) // an hour after the segment's newest record
	if n := cleanAll(t, e.st); n != 1 {
		t.Fatalf("%d passes once the tombstones were due, want 1", n)
	}
	if tombs, vals := count(); tombs != 0 || vals != 5 {
		t.Fatalf("after delete.retention.ms: %d tombstones, %d values; want 0 and 5", tombs, vals)
	}
	if got := latestByKey(readRecs(t, l)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a deleted key came back: %v, want %v", got, want)
	}
	e.reopen()
	if got := latestByKey(readRecs(t, e.st.Log("tomb", 0))); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen: %v, want %v", got, want)
	}
}

func TestCleanCompressed(t *testing.T) {
	for _, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.ZstdCompression(),
		kgo.SnappyCompression(), kgo.Lz4Compression()} {
		e := compactEnv(t, nil)
		l := e.log("z", 0, compactCfg(16<<10))
		all, latest := writeKeyed(t, l, 5000, 50, 50, e.now().UnixMilli(), &codec, rand.New(rand.NewSource(2)))
		rollWith(t, l, e.now().UnixMilli())
		cleanAll(t, e.st)
		checkCompacted(t, l, all, latest)
		_, hs, err := decodeBatches(readAll(t, l))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs[:len(hs)-1] {
			if h.Compression() != int8(codecType(codec)) {
				t.Fatalf("codec %d: a cleaned batch has codec %d", codecType(codec), h.Compression())
			}
		}
	}
}

func codecType(c kgo.CompressionCodec) kgo.CompressionCodecType {
	comp, _ := kgo.DefaultCompressor(c)
	_, typ := comp.Compress(new(bytes.Buffer), []byte("x"))
	return typ
}

func TestCleanKeepsProducersLastBatchEmpty(t *testing.T) {
	e := compactEnv(t, nil)
	l := e.log("pid", 0, compactCfg(2<<10))
	ts := e.now().UnixMilli()
	const pid = 7
	for i := 0; i < 4; i++ { // producer 7: batches of 3, sequences 0, 3, 6, 9
		appendSync(t, l, keyedBatch([]kv{rec("a", "1"), rec("b", "1"), rec("c", "1")}, ts, nil, pid, int32(3*i)), 0)
	}
	// A non-idempotent producer supersedes every record of producer 7.
	appendSync(t, l, keyedBatch([]kv{rec("a", "2"), rec("b", "2"), rec("c", "2")}, ts, nil, -1, 0), 0)
	rollWith(t, l, ts)
	cleanAll(t, e.st)
	_, hs, err := decodeBatches(readAll(t, l))
	if err != nil {
		t.Fatal(err)
	}
	var empty []batchHeader
	for _, h := range hs {
		if h.ProducerID == pid {
			empty = append(empty, h)
		}
	}
	if len(empty) != 1 {
		t.Fatalf("%d batches of producer %d left, want its last one only", len(empty), pid)
	}
	if h := empty[0]; h.RecordCount != 0 || h.BaseOffset != 9 || h.LastOffDelta != 2 || h.BaseSequence != 9 || h.ProducerEpoch != 0 {
		t.Fatalf("producer's last batch: %+v, want base 9, lastOffsetDelta 2, sequence 9, no records", h)
	}
	// Recovery accepts it, and the producer state rebuilt from the log
	// knows where the producer's sequence stands.
	e.crash(0, nil)
	l = e.st.Log("pid", 0)
	if _, hs, err = decodeBatches(readAll(t, l)); err != nil || hs[0].BaseOffset != 9 {
		t.Fatalf("after crash: %v %+v", err, hs)
	}
	if _, err := l.Append(keyedBatch([]kv{rec("a", "3")}, ts, nil, pid, 13), 0, nil); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence 13 after 11: %v, want ErrOutOfOrderSequence", err)
	}
	if r := appendSync(t, l, keyedBatch([]kv{rec("a", "3")}, ts, nil, pid, 12), 0); r.Err != nil {
		t.Fatalf("the producer's next sequence after cleaning and a crash: %v", r.Err)
	}
}

func TestCleanBoundedDedupeBuffer(t *testing.T) {
	e := compactEnv(t, func(c *Config) { c.Cleaner.DedupeBufferBytes = 128 * mapSlotBytes }) // 96 keys
	cfg := compactCfg(4 << 10)
	cfg.MinCleanableRatio = 1e-9 // clean to the end, however little is dirty
	l := e.log("small", 0, cfg)
	all, latest := writeKeyed(t, l, 3000, 300, 10, e.now().UnixMilli(), nil, rand.New(rand.NewSource(3)))
	rollWith(t, l, e.now().UnixMilli())
	end := l.active().base
	var checkpoints []int64
	for {
		st, ok, err := e.st.Clean()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		checkpoints = append(checkpoints, st.End)
		if len(checkpoints) > 100 {
			t.Fatal("no progress")
		}
	}
	if len(checkpoints) < 3 || checkpoints[len(checkpoints)-1] != end {
		t.Fatalf("checkpoints %v: want several passes ending at %d", checkpoints, end)
	}
	checkCompacted(t, l, all, latest)
	// One batch with more keys than the map holds cannot be cleaned: the log
	// is marked uncleanable, not cleaned wrong.
	l2 := e.log("small", 1, compactCfg(1<<10))
	var recs []kv
	for i := 0; i < 200; i++ {
		recs = append(recs, rec(fmt.Sprint(i), "v"))
	}
	appendSync(t, l2, keyedBatch(recs, 1, nil, -1, 0), 0)
	rollWith(t, l2, 1)
	if _, _, err := e.st.Clean(); err == nil {
		t.Fatal("a batch larger than the dedupe buffer was cleaned")
	}
	if _, ok, err := e.st.Clean(); ok || err != nil {
		t.Fatalf("uncleanable log picked again: %v %v", ok, err)
	}
}
