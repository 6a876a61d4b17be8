package segstore

import (
	"bytes"
	"testing"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzValidateBatch: no input panics the batch validator, and what it accepts
// has a consistent header.
func FuzzValidateBatch(f *testing.F) {
	f.Add(makeBatch(3, 20, 1, nil))
	gz := kgo.GzipCompression()
	f.Add(makeBatch(2, 50, 1, &gz))
	f.Add(append(makeBatch(1, 1, 1, nil), makeBatch(2, 2, 2, nil)...))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = splitBatches(data, func(b []byte, h batchHeader) error {
			if h.Size() != int64(len(b)) || h.RecordCount <= 0 || h.LastOffDelta != h.RecordCount-1 {
				t.Fatalf("accepted inconsistent batch: %+v, %d bytes", h, len(b))
			}
			return nil
		})
	})
}

// FuzzDecodeIndex: index files of any content either load with their
// invariants holding or are rejected (and rebuilt by the caller).
func FuzzDecodeIndex(f *testing.F) {
	ix := segIndex{offsets: []offsetEntry{{1, 100}, {5, 900}}, times: []timeEntry{{10, 1}, {20, 5}}}
	f.Add(ix.encodeOffsets(), ix.encodeTimes(), int64(1000))
	f.Add([]byte{1, 2, 3}, []byte{}, int64(5))
	f.Fuzz(func(t *testing.T, offs, times []byte, size int64) {
		if es, err := decodeOffsets(offs, size); err == nil {
			for i, e := range es {
				if int64(e.pos) >= size || i > 0 && (e.rel <= es[i-1].rel || e.pos <= es[i-1].pos) {
					t.Fatalf("accepted bad offset index entry %d: %+v", i, e)
				}
			}
			s := segIndex{offsets: es}
			_ = s.lookup(7)
		}
		if ts, err := decodeTimes(times, 1<<20); err == nil {
			s := segIndex{times: ts}
			_, _ = s.lookupTime(15)
		}
	})
}

// FuzzRecoverGarbageTail: whatever garbage follows valid batches after a
// crash, recovery never panics, keeps every valid batch before it, and leaves
// a log that takes appends.
func FuzzRecoverGarbageTail(f *testing.F) {
	f.Add([]byte("garbage"))
	f.Add(makeBatch(2, 10, 5, nil)) // a batch with the wrong base offset
	f.Add(bytes.Repeat([]byte{0xff}, 100))
	f.Fuzz(func(t *testing.T, tail []byte) {
		fs := vfs.NewMem()
		e := &env{t: t, fs: fs}
		e.cfg = Config{Dir: "/d", FS: fs}
		e.eng = ioring.NewFake()
		e.open()
		l := e.log("f", 0, LogConfig{})
		var want [][]byte
		for i := 0; i < 3; i++ {
			b := makeBatch(2, 30, int64(i), nil)
			appendSync(t, l, b, 0)
			want = append(want, b)
		}
		seg := segName("/d/f-0", 0, ".log")
		file, _ := fs.OpenRW(seg)
		size, _ := file.Size()
		file.WriteAt(tail, size)
		file.Sync()
		file.Close()
		e.st.closing.Store(true)
		e.st = nil
		e.open() // no clean marker: full recovery
		l = e.st.Log("f", 0)
		got := readAll(t, l)
		if len(got) < len(want) {
			t.Fatalf("recovery kept %d of %d valid batches", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("batch %d changed", i)
			}
		}
		if r := appendSync(t, l, makeBatch(1, 1, 1, nil), 0); r.Err != nil {
			t.Fatalf("append after recovery: %v", r.Err)
		}
		e.st.Close()
	})
}
