package segstore

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicemq/sluice/ioring/vfs"
	"golang.org/x/sys/unix"
)

// fileSizes maps each segment base of l to (logical size, file size).
func fileSizes(t *testing.T, fs vfs.FS, l *Log) (logical, onDisk []int64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		f, err := fs.Open(segName(s.dir, s.base, ".log"))
		if err != nil {
			t.Fatal(err)
		}
		n, err := f.Size()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		logical, onDisk = append(logical, s.size), append(onDisk, n)
	}
	return logical, onDisk
}

// A cold log on a file system with direct I/O writes aligned blocks: MemFS's
// direct handle refuses misaligned writes as the kernel does. Data reads back
// whole across cold/hot switches and rolls, the active segment runs to the
// next block boundary, rolled segments and a cleanly closed log end exactly
// at their size, and a reopened log holds the same batches.
func TestDirectWritesLayout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Flush = FlushAck })
	l := e.log("d", 0, LogConfig{SegmentBytes: 20 << 10})
	rng := rand.New(rand.NewSource(1))
	var want [][]byte
	cold := true
	l.SetColdWrites(true)
	for i := range 300 {
		if i%37 == 36 { // switch between follower and leader now and then
			cold = !cold
			l.SetColdWrites(cold)
		}
		b := makeBatch(1+rng.Intn(3), rng.Intn(900), 1, nil)
		if r := appendSync(t, l, b, 0); r.Err != nil {
			t.Fatalf("append %d: %v", i, r.Err)
		}
		want = append(want, b)
		logical, onDisk := fileSizes(t, e.fs, l)
		last := len(logical) - 1
		for k := range last {
			if logical[k] != onDisk[k] {
				t.Fatalf("append %d: rolled segment %d is %d bytes on disk, %d in the log", i, k, onDisk[k], logical[k])
			}
		}
		if cold {
			if onDisk[last]%directAlign != 0 || onDisk[last] < logical[last] || onDisk[last]-logical[last] >= directAlign {
				t.Fatalf("append %d: active segment %d bytes on disk for %d: not one padded block", i, onDisk[last], logical[last])
			}
		}
	}
	check := func(when string) {
		t.Helper()
		got := readAll(t, l)
		if len(got) != len(want) {
			t.Fatalf("%s: %d batches, want %d", when, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: batch %d differs", when, i)
			}
		}
	}
	check("before close")
	if !cold { // end on a direct write
		l.SetColdWrites(true)
		b := makeBatch(1, 10, 1, nil)
		if r := appendSync(t, l, b, 0); r.Err != nil {
			t.Fatal(r.Err)
		}
		want = append(want, b) // Append stamped b in place
	}
	if logical, onDisk := fileSizes(t, e.fs, l); logical[len(logical)-1] == onDisk[len(onDisk)-1] {
		t.Fatalf("the last write was direct, yet the file is not padded (%d bytes)", onDisk[len(onDisk)-1])
	}
	e.reopen()
	l = e.st.Log("d", 0)
	logical, onDisk := fileSizes(t, e.fs, l)
	for k := range logical {
		if logical[k] != onDisk[k] {
			t.Fatalf("after a clean close segment %d is %d bytes on disk, %d in the log", k, onDisk[k], logical[k])
		}
	}
	check("after reopen")
}

// On a real file system a cold log's writes bypass the page cache
// entirely, and the io_uring engine handles the aligned writes.
func TestDirectWritesSkipPageCache(t *testing.T) {
	st := diskStore(t, Config{Flush: FlushAck})
	l, err := st.CreateLog("direct", 0, LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l.SetColdWrites(true)
	var want [][]byte
	for i := range 40 {
		b := makeBatch(3, 1000+i*37, 1, nil)
		if r := appendSync(t, l, b, 0); r.Err != nil {
			t.Fatal(r.Err)
		}
		want = append(want, b)
	}
	if st.noDirect.Load() {
		t.Fatalf("%s refused O_DIRECT", st.cfg.Dir)
	}
	path := filepath.Join(l.Dir(), "00000000000000000000.log")
	if resident, total := residentPages(t, path); resident != 0 {
		t.Fatalf("%d of %d pages of a direct-written log are cached", resident, total)
	}
	got := readAll(t, l)
	for i := range want {
		if i >= len(got) || !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs or is missing (%d read)", i, len(got))
		}
	}
	size := l.Offsets()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, b := range want {
		sum += int64(len(b))
	}
	if fi.Size() != sum {
		t.Fatalf("closed log file is %d bytes, want %d (offsets %+v)", fi.Size(), sum, size)
	}
}

// noDirectFS is a MemFS whose OpenDirect fails as on a file system
// without O_DIRECT.
type noDirectFS struct{ *vfs.MemFS }

func (noDirectFS) OpenDirect(name string) (vfs.File, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: unix.EINVAL}
}

// Where the file system refuses O_DIRECT, cold logs fall back to the page
// cache and keep working.
func TestDirectWritesFallback(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Flush = FlushAck })
	e.st.Close()
	e.cfg.FS = noDirectFS{e.fs}
	st, err := Open(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	l := e.log("direct", 0, LogConfig{})
	l.SetColdWrites(true)
	for i := range 5 {
		if r := appendSync(t, l, makeBatch(2, 500, 1, nil), 0); r.Err != nil || r.BaseOffset != int64(2*i) {
			t.Fatalf("append %d: %+v", i, r)
		}
	}
	if !st.noDirect.Load() {
		t.Fatal("the store did not notice that O_DIRECT is refused")
	}
	if got := readAll(t, l); len(got) != 5 {
		t.Fatalf("read %d batches, want 5", len(got))
	}
	if logical, onDisk := fileSizes(t, e.fs, l); logical[0] != onDisk[0] {
		t.Fatalf("buffered writes padded the file: %d bytes for %d", onDisk[0], logical[0])
	}
}

// einvalFS opens direct handles whose writes fail with EINVAL, as on a
// device that wants a larger alignment than directAlign.
type einvalFS struct{ *vfs.MemFS }

type einvalFile struct{ vfs.File }

func (f einvalFile) WriteAt([]byte, int64) (int, error) { return 0, unix.EINVAL }

func (fs einvalFS) OpenDirect(name string) (vfs.File, error) {
	f, err := fs.MemFS.OpenDirect(name)
	if err != nil {
		return nil, err
	}
	return einvalFile{f}, nil
}

// A direct write the device refuses fails that append only: the log stays
// usable, later appends go through the page cache, nothing is lost.
func TestDirectWriteRefusedFallsBack(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Flush = FlushAck })
	e.st.Close()
	e.cfg.FS = einvalFS{e.fs}
	st, err := Open(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	l := e.log("direct", 0, LogConfig{})
	first := makeBatch(2, 500, 1, nil)
	if r := appendSync(t, l, first, 0); r.Err != nil {
		t.Fatal(r.Err) // hot: buffered
	}
	l.SetColdWrites(true)
	if r := appendSync(t, l, makeBatch(2, 500, 1, nil), 0); !errors.Is(r.Err, ErrStorage) {
		t.Fatalf("refused direct write: %+v, want ErrStorage", r)
	}
	if !st.noDirect.Load() {
		t.Fatal("direct writes not turned off after EINVAL")
	}
	second := makeBatch(3, 200, 1, nil)
	if r := appendSync(t, l, second, 0); r.Err != nil || r.BaseOffset != 2 {
		t.Fatalf("append after the refusal: %+v, want base 2", r)
	}
	got := readAll(t, l)
	if len(got) != 2 || !bytes.Equal(got[0], first) || !bytes.Equal(got[1], second) {
		t.Fatalf("log holds %d batches, want the two accepted ones", len(got))
	}
}
