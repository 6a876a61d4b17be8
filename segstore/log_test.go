package segstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestValidateBatch(t *testing.T) {
	good := makeBatch(3, 10, 1000, nil)
	f := func(name string, mut func(b []byte) []byte, want error) {
		t.Helper()
		b := mut(append([]byte(nil), good...))
		_, err := validateBatch(b)
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
	f("good", func(b []byte) []byte { return b }, nil)
	f("short", func(b []byte) []byte { return b[:40] }, ErrCorruptBatch)
	f("length field", func(b []byte) []byte { b[offBatchLength+3]++; return b }, ErrCorruptBatch)
	f("magic", func(b []byte) []byte { b[offMagic] = 1; return b }, ErrCorruptBatch)
	f("crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCorruptBatch)
	f("count", func(b []byte) []byte {
		b[offRecordCount+3] = 5
		return fixCRC(b)
	}, ErrInvalidRecord)
	f("record framing", func(b []byte) []byte {
		b[offLastOffsetDelt+3], b[offRecordCount+3] = 1, 2 // header says 2, data holds 3
		return fixCRC(b)
	}, ErrInvalidRecord)
	gz := kgo.GzipCompression()
	if _, err := validateBatch(makeBatch(5, 100, 1, &gz)); err != nil {
		t.Errorf("gzip batch: %v", err)
	}
}

func fixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offCRC:], crcOf(b))
	return b
}

func TestAppendAssignsOffsetsAndReads(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("t", 0, LogConfig{})
	var want [][]byte
	for i := 0; i < 50; i++ {
		b := makeBatch(1+i%4, 100, int64(1000+i), nil)
		r := appendSync(t, l, b, 3)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		h := parseHeader(b)
		if r.BaseOffset != h.BaseOffset || h.LeaderEpoch != 3 {
			t.Fatalf("batch %d: result base %d, header base %d epoch %d", i, r.BaseOffset, h.BaseOffset, h.LeaderEpoch)
		}
		want = append(want, append([]byte(nil), b...))
	}
	got := readAll(t, l)
	if len(got) != len(want) {
		t.Fatalf("read %d batches, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	if o := l.Offsets(); o.End != o.Durable {
		t.Fatalf("policy ack: LEO %d != durable %d", o.End, o.Durable)
	}
	if ep := l.Epochs(); len(ep) != 1 || ep[0] != (EpochEntry{3, 0}) {
		t.Fatalf("epochs %v", ep)
	}
}

func TestReadBoundsAndMaxBytes(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("t", 0, LogConfig{})
	var sizes []int64
	for i := 0; i < 10; i++ {
		b := makeBatch(2, 500, 1, nil)
		sizes = append(sizes, int64(len(b)))
		if r := appendSync(t, l, b, 0); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	// Offset 3 lives in the second batch (offsets 2,3).
	sl, err := l.Read(3, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if sl.Pos != sizes[0] || sl.Len != sizes[1] {
		t.Fatalf("minOneMessage: got pos %d len %d, want %d %d", sl.Pos, sl.Len, sizes[0], sizes[1])
	}
	sl.Release()
	// Bound at offset 6 (start of batch 4): reading from 2 stops there.
	sl, err = l.Read(2, 1<<20, 6)
	if err != nil {
		t.Fatal(err)
	}
	if sl.Len != sizes[1]+sizes[2] {
		t.Fatalf("bound: len %d, want %d", sl.Len, sizes[1]+sizes[2])
	}
	sl.Release()
	// maxBytes between batch boundaries: whole batches only.
	sl, err = l.Read(0, sizes[0]+sizes[1]+sizes[2]/2, -1)
	if err != nil || sl.Pos != 0 || sl.Len != sizes[0]+sizes[1] {
		t.Fatalf("whole batches: pos %d len %d err %v, want len %d", sl.Pos, sl.Len, err, sizes[0]+sizes[1])
	}
	sl.Release()
	if sl, err := l.Read(20, 100, -1); err != nil || sl.Len != 0 {
		t.Fatalf("read at LEO: %v len %d", err, sl.Len)
	}
	if _, err := l.Read(21, 100, -1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past LEO: %v", err)
	}
}

func TestRollIndexAndReopen(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("roll", 2, LogConfig{SegmentBytes: 8 << 10, IndexIntervalBytes: 512})
	var want [][]byte
	for i := 0; i < 200; i++ {
		b := makeBatch(3, 60+i%50, int64(i*10), nil)
		if r := appendSync(t, l, b, int32(i/50)); r.Err != nil {
			t.Fatal(r.Err)
		}
		want = append(want, append([]byte(nil), b...))
	}
	if n := len(l.segs); n < 5 {
		t.Fatalf("only %d segments", n)
	}
	check := func(l *Log) {
		t.Helper()
		for i, w := range want {
			h := parseHeader(w)
			for off := h.BaseOffset; off <= h.LastOffset(); off++ {
				buf, err := l.ReadCopy(off, 1, -1, nil)
				if err != nil || !bytes.Equal(buf, w) {
					t.Fatalf("offset %d (batch %d): err %v, equal %v", off, i, err, bytes.Equal(buf, w))
				}
			}
		}
		if ep := l.Epochs(); len(ep) != 4 || ep[3] != (EpochEntry{3, 450}) {
			t.Fatalf("epochs %v", ep)
		}
	}
	check(l)
	e.reopen()
	check(e.st.Log("roll", 2))
	// Lose every index file and the clean marker: recovery rebuilds them.
	e.st.Close()
	names, _ := e.fs.ReadDir("/data/roll-2")
	for _, n := range names {
		if bytes.HasSuffix([]byte(n), []byte("index")) {
			e.fs.Remove("/data/roll-2/" + n)
		}
	}
	e.fs.Remove("/data/" + cleanShutdownFile)
	e.open()
	check(e.st.Log("roll", 2))
}

func TestLogAppendTimeAndTimeLookups(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("t", 0, LogConfig{IndexIntervalBytes: 100})
	zstd := kgo.ZstdCompression()
	for i := 0; i < 20; i++ {
		var c *kgo.CompressionCodec
		if i%2 == 1 {
			c = &zstd
		}
		if r := appendSync(t, l, makeBatch(5, 50, int64(10_000+i*100), c), 0); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	f := func(ts, wantOff, wantTs int64, wantFound bool) {
		t.Helper()
		off, gotTs, found, err := l.OffsetForTime(ts)
		if err != nil || found != wantFound || (found && (off != wantOff || gotTs != wantTs)) {
			t.Errorf("OffsetForTime(%d) = %d %d %v %v, want %d %d %v", ts, off, gotTs, found, err, wantOff, wantTs, wantFound)
		}
	}
	f(0, 0, 10_000, true)
	f(10_002, 2, 10_002, true)
	f(10_005, 5, 10_100, true)  // between batches: first record of the next
	f(10_703, 38, 10_703, true) // inside a compressed batch
	f(11_904, 99, 11_904, true) // last record
	f(11_905, -1, -1, false)    // newer than everything
	off, ts, found, err := l.MaxTimestamp()
	if err != nil || !found || off != 99 || ts != 11_904 {
		t.Fatalf("MaxTimestamp = %d %d %v %v", off, ts, found, err)
	}

	la := e.log("lat", 0, LogConfig{TimestampType: LogAppendTime})
	b := makeBatch(3, 10, 5, nil)
	r := appendSync(t, la, b, 0)
	now := e.now().UnixMilli()
	if r.Err != nil || r.LogAppendTime != now {
		t.Fatalf("LogAppendTime result %+v, want %d", r, now)
	}
	if _, err := validateBatch(b); err != nil {
		t.Fatalf("stamped batch invalid: %v", err)
	}
	if off, ts, found, _ := la.OffsetForTime(now); !found || off != 0 || ts != now {
		t.Fatalf("LogAppendTime lookup %d %d %v", off, ts, found)
	}
}

func TestInvalidAppendLeavesLogUntouched(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("t", 0, LogConfig{MaxMessageBytes: 2000})
	appendSync(t, l, makeBatch(1, 10, 1, nil), 0)
	bad := makeBatch(2, 10, 1, nil)
	bad[len(bad)-1] ^= 0xff
	good := makeBatch(1, 10, 1, nil)
	if _, err := l.Append(append(good, bad...), 0, nil); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("corrupt second batch: %v", err)
	}
	if _, err := l.Append(makeBatch(1, 5000, 1, nil), 0, nil); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if _, err := l.Append([]byte{1, 2, 3}, 0, nil); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("garbage: %v", err)
	}
	if o := l.Offsets(); o.End != 1 {
		t.Fatalf("LEO moved to %d", o.End)
	}
	if r := appendSync(t, l, makeBatch(1, 10, 1, nil), 0); r.Err != nil || r.BaseOffset != 1 {
		t.Fatalf("append after rejects: %+v", r)
	}
}

func TestRetentionAndDeleteRecords(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("r", 0, LogConfig{SegmentBytes: 4 << 10, RetentionMs: time.Hour})
	base := e.now().UnixMilli()
	for i := 0; i < 40; i++ {
		ts := base - int64(2*time.Hour/time.Millisecond) // old
		if i >= 20 {
			ts = base
		}
		appendSync(t, l, makeBatch(2, 400, ts, nil), 0)
	}
	before := len(l.segs)
	n, err := l.EnforceRetention(e.now())
	if err != nil || n == 0 {
		t.Fatalf("retention deleted %d: %v", n, err)
	}
	o := l.Offsets()
	if o.Start == 0 || o.Start > 40 {
		t.Fatalf("start offset %d after deleting %d of %d segments", o.Start, n, before)
	}
	if _, err := l.Read(0, 100, -1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	start, err := l.DeleteRecords(61)
	if err != nil || start != 61 {
		t.Fatalf("DeleteRecords: %d %v", start, err)
	}
	if got := readAll(t, l); len(got) == 0 || lastOffsetOf(got[0]) < 61 {
		t.Fatalf("first readable batch ends before 61")
	}
	// By size: keep about 8 KiB.
	l.SetConfig(LogConfig{SegmentBytes: 4 << 10, RetentionMs: -1, RetentionBytes: 8 << 10})
	l.EnforceRetention(e.now())
	if sz := l.Size(); sz > 12<<10 {
		t.Fatalf("size %d after retention.bytes", sz)
	}
	e.reopen()
	if got := e.st.Log("r", 0).Offsets().Start; got < 61 {
		t.Fatalf("log start offset %d lost on reopen", got)
	}
}

func TestTruncateTo(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("t", 0, LogConfig{SegmentBytes: 2 << 10})
	for i := 0; i < 30; i++ {
		appendSync(t, l, makeBatch(2, 100, int64(i), nil), int32(i/10))
	}
	if err := l.TruncateTo(25); err != nil { // inside batch [24,25]: the whole batch goes
		t.Fatal(err)
	}
	if o := l.Offsets(); o.End != 24 {
		t.Fatalf("LEO %d, want 24", o.End)
	}
	if ep := l.Epochs(); len(ep) != 2 || ep[1].StartOffset != 20 {
		t.Fatalf("epochs %v", ep)
	}
	if got := readAll(t, l); len(got) != 12 {
		t.Fatalf("%d batches after truncate", len(got))
	}
	if r := appendSync(t, l, makeBatch(1, 10, 1, nil), 5); r.Err != nil || r.BaseOffset != 24 {
		t.Fatalf("append after truncate: %+v", r)
	}
	if ep, end := l.EndOffsetForEpoch(1); ep != 1 || end != 24 {
		t.Fatalf("EndOffsetForEpoch(1) = %d %d", ep, end)
	}
	e.reopen()
	if o := e.st.Log("t", 0).Offsets(); o.End != 25 {
		t.Fatalf("after reopen LEO %d", o.End)
	}
}

func lastOffsetOf(b []byte) int64 { h := parseHeader(b); return h.LastOffset() }
