package segstore

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"reflect"
	"testing"

	"github.com/sluicemq/sluice/ioring/vfs"
)

func TestSnapshotRoundTrip(t *testing.T) {
	f := func(entries []snapEntry) {
		t.Helper()
		b := encodeSnapshot(entries)
		if len(b) != snapshotHeader+len(entries)*snapshotEntrySize {
			t.Fatalf("%d entries encoded in %d bytes", len(entries), len(b))
		}
		got, err := decodeSnapshot(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 && len(entries) == 0 {
			return
		}
		if !reflect.DeepEqual(got, entries) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, entries)
		}
	}
	f(nil)
	f([]snapEntry{{pid: 1, epoch: 0, lastSeq: 4, lastOffset: 4, offsetDelta: 4, ts: 1000}})
	f([]snapEntry{
		{pid: 0, epoch: 32766, lastSeq: math.MaxInt32, lastOffset: math.MaxInt64, offsetDelta: 0, ts: -1},
		{pid: 1 << 40, epoch: 3, lastSeq: -1, lastOffset: -1, offsetDelta: 0, ts: 5},
	})
}

// TestSnapshotLayout pins the bytes to Kafka's ProducerSnapshot v1, so
// Kafka's tools (kafka-dump-log --files x.snapshot) read sluice's files.
func TestSnapshotLayout(t *testing.T) {
	b := encodeSnapshot([]snapEntry{{pid: 0x0102030405060708, epoch: 9, lastSeq: 10, lastOffset: 11, offsetDelta: 12, ts: 13}})
	be := binary.BigEndian
	want := []any{int16(1), uint32(0), int32(1),
		int64(0x0102030405060708), int16(9), int32(10), int64(11), int32(12), int64(13), int32(-1), int64(-1)}
	var w []byte
	for _, v := range want {
		w, _ = binary.Append(w, be, v)
	}
	be.PutUint32(w[2:], crc32.Checksum(w[6:], crc32.MakeTable(crc32.Castagnoli)))
	if !reflect.DeepEqual(b, w) {
		t.Fatalf("snapshot bytes\n got %x\nwant %x", b, w)
	}
}

func TestSnapshotCorruptIsRejected(t *testing.T) {
	good := encodeSnapshot([]snapEntry{{pid: 1, lastSeq: 4, lastOffset: 4, offsetDelta: 4, ts: 1}, {pid: 2, lastSeq: 0, ts: 2}})
	f := func(name string, mut func(b []byte) []byte) {
		t.Helper()
		b := mut(append([]byte(nil), good...))
		if _, err := decodeSnapshot(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[2:], crc32.Checksum(b[6:], castagnoli))
		return b
	}
	f("empty", func(b []byte) []byte { return nil })
	f("short header", func(b []byte) []byte { return b[:7] })
	f("flipped bit", func(b []byte) []byte { b[30] ^= 4; return b })
	f("torn", func(b []byte) []byte { return b[:len(b)-10] })
	f("version", func(b []byte) []byte { b[1] = 2; return b })
	f("count", func(b []byte) []byte { b[9] = 3; return recrc(b) })
	f("negative count", func(b []byte) []byte { b[6] = 0x80; return recrc(b) })
	f("negative producer id", func(b []byte) []byte { b[snapshotHeader] = 0x80; return recrc(b) })
	f("offset delta past the offset", func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[snapshotHeader+22:], 100)
		return recrc(b)
	})
}

// FuzzDecodeSnapshot: no file content panics the decoder, and whatever it
// accepts survives re-encoding unchanged.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(nil))
	f.Add(encodeSnapshot([]snapEntry{{pid: 1, lastSeq: 4, lastOffset: 4, offsetDelta: 4, ts: 1}, {pid: 9, epoch: 2, lastSeq: -1, lastOffset: -1}}))
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		again, err := decodeSnapshot(encodeSnapshot(entries))
		if err != nil || len(again) != len(entries) || (len(entries) > 0 && !reflect.DeepEqual(again, entries)) {
			t.Fatalf("accepted snapshot does not survive re-encoding: %v\n%+v\n%+v", err, entries, again)
		}
		var ps producerState
		ps.load(entries)
		for _, e := range ps.m {
			if e.n > 1 || (e.n == 1 && e.batches[0].firstOffset > e.batches[0].lastOffset) {
				t.Fatalf("loaded entry is inconsistent: %+v", *e)
			}
		}
	})
}

// TestProducerSnapshotFiles: a snapshot per roll at the new segment's base,
// one at the LEO at clean shutdown; only those of the last two segments and
// the newest stay.
func TestProducerSnapshotFiles(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("snaps", 0, LogConfig{SegmentBytes: 1 << 10})
	writeProducers(t, e, l, 3, 20, map[int64]int32{})
	l.mu.Lock()
	var bases []int64
	for _, s := range l.segs {
		bases = append(bases, s.base)
	}
	l.mu.Unlock()
	if len(bases) < 4 {
		t.Fatalf("only %d segments; the test needs rolls", len(bases))
	}
	snaps, err := listSnapshots(e.fs, l.dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := bases[len(bases)-2:]; !reflect.DeepEqual(snaps, want) {
		t.Fatalf("snapshots %v, want the last two segment bases %v (segments %v)", snaps, want, bases)
	}
	end := l.Offsets().End
	e.reopen()
	snaps, _ = listSnapshots(e.fs, l.dir)
	if want := append(bases[len(bases)-2:], end); !reflect.DeepEqual(snaps, want) {
		t.Fatalf("snapshots after clean shutdown %v, want %v", snaps, want)
	}
	// Each one holds the state as of its offset: every producer's last
	// batch below it, as the log says.
	batches := readAll(t, e.st.Log("snaps", 0))
	for _, off := range snaps {
		data, err := vfs.ReadFile(e.fs, snapshotName(l.dir, off))
		if err != nil {
			t.Fatal(err)
		}
		entries, err := decodeSnapshot(data)
		if err != nil {
			t.Fatalf("snapshot %d: %v", off, err)
		}
		var want []snapEntry
		for pid := int64(1); pid <= 3; pid++ {
			se := snapEntry{pid: pid, lastSeq: -1}
			for _, b := range batches {
				if h := parseHeader(b); h.ProducerID == pid && h.LastOffset() < off {
					se = snapEntry{pid: pid, lastSeq: incSeq(h.BaseSequence, h.LastOffDelta), lastOffset: h.LastOffset(),
						offsetDelta: h.LastOffDelta, ts: h.MaxTimestamp}
				}
			}
			want = append(want, se)
		}
		if !reflect.DeepEqual(entries, want) {
			t.Fatalf("snapshot %d:\n got %+v\nwant %+v", off, entries, want)
		}
	}
}

// TestCorruptSnapshotFallsBack: a damaged newest snapshot is deleted and the
// state comes from the older one plus replay; without any the log is replayed.
func TestCorruptSnapshotFallsBack(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("corrupt", 0, LogConfig{SegmentBytes: 1 << 10})
	writeProducers(t, e, l, 3, 15, map[int64]int32{})
	want := lastBatches(l.Producers())
	end := l.Offsets().End
	e.reopen()
	dir := l.dir
	f, err := e.fs.OpenRW(snapshotName(dir, end))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff, 0xee}, 20)
	f.Close()
	e.reopen()
	l = e.st.Log("corrupt", 0)
	if got := lastBatches(l.Producers()); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a corrupt snapshot:\n got %+v\nwant %+v", got, want)
	}
	for _, off := range mustList(t, e.fs, dir) {
		if data, _ := vfs.ReadFile(e.fs, snapshotName(dir, off)); data != nil {
			if _, err := decodeSnapshot(data); err != nil {
				t.Fatalf("corrupt snapshot %d still there: %v", off, err)
			}
		}
	}
	for _, off := range mustList(t, e.fs, dir) { // no snapshot at all
		e.fs.Remove(snapshotName(dir, off))
	}
	e.crash(vfs.DropUnsynced, nil)
	if got := lastBatches(e.st.Log("corrupt", 0).Producers()); !reflect.DeepEqual(got, want) {
		t.Fatalf("with no snapshot:\n got %+v\nwant %+v", got, want)
	}
}

func mustList(t *testing.T, fs vfs.FS, dir string) []int64 {
	t.Helper()
	offs, err := listSnapshots(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	return offs
}
