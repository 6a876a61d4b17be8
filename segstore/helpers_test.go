package segstore

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
)

// makeBatch encodes a v2 RecordBatch as a producer would: baseOffset 0,
// n records with values of size bytes, timestamps ts, ts+1, ...; codec is a
// kgo codec (nil for none).
func makeBatch(n, size int, ts int64, codec *kgo.CompressionCodec) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		var r []byte
		r = append(r, 0)                    // attributes
		r = kbin.AppendVarlong(r, int64(i)) // timestamp delta
		r = kbin.AppendVarint(r, int32(i))  // offset delta
		r = kbin.AppendVarint(r, -1)        // null key
		v := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		r = kbin.AppendVarintBytes(r, v)
		r = kbin.AppendVarint(r, 0) // headers
		recs = kbin.AppendVarint(recs, int32(len(r)))
		recs = append(recs, r...)
	}
	var attrs uint16
	if codec != nil {
		c, err := kgo.DefaultCompressor(*codec)
		if err != nil {
			panic(err)
		}
		out, typ := c.Compress(new(bytes.Buffer), recs)
		recs = append([]byte(nil), out...)
		attrs = uint16(typ)
	}
	b := make([]byte, batchHeaderSize, batchHeaderSize+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[offBatchLength:], uint32(batchHeaderSize-logOverhead+len(recs)))
	be.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint32(b[offLastOffsetDelt:], uint32(n-1))
	be.PutUint64(b[offBaseTimestamp:], uint64(ts))
	be.PutUint64(b[offMaxTimestamp:], uint64(ts+int64(n-1)))
	be.PutUint64(b[offProducerID:], ^uint64(0))
	be.PutUint16(b[offProducerEpoch:], 0xffff)
	be.PutUint32(b[offBaseSequence:], 0xffffffff)
	be.PutUint32(b[offRecordCount:], uint32(n))
	b = append(b, recs...)
	be.PutUint32(b[offCRC:], crcOf(b))
	return b
}

// env is a Store on a MemFS with a fake engine and a settable clock.
type env struct {
	t   *testing.T
	fs  *vfs.MemFS
	eng *ioring.Fake
	st  *Store
	cfg Config

	clockMu sync.Mutex
	clock   time.Time
}

func newEnv(t *testing.T, mut func(*Config)) *env {
	t.Helper()
	e := &env{t: t, fs: vfs.NewMem(), eng: ioring.NewFake(), clock: time.UnixMilli(1_700_000_000_000)}
	e.cfg = Config{Dir: "/data", FS: e.fs, Engine: e.eng, Now: e.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mut != nil {
		mut(&e.cfg)
	}
	e.open()
	t.Cleanup(func() {
		if e.st != nil {
			e.st.Close()
		}
	})
	return e
}

func (e *env) now() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.clock
}

func (e *env) advance(d time.Duration) {
	e.clockMu.Lock()
	e.clock = e.clock.Add(d)
	e.clockMu.Unlock()
}

func (e *env) open() {
	e.t.Helper()
	e.cfg.FS, e.cfg.Engine = e.fs, e.eng
	if e.cfg.Logger == nil {
		e.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if e.cfg.Now == nil {
		e.cfg.Now = time.Now
	}
	st, err := Open(e.cfg)
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	e.st = st
}

// reopen closes cleanly and opens again.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.st.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.open()
}

// crash abandons the store and opens what a power cut leaves.
func (e *env) crash(mode vfs.CrashMode, rng *rand.Rand) {
	e.t.Helper()
	e.fs = e.fs.CrashClone(mode, rng)
	e.st.closing.Store(true) // the old store must not touch the new fs; its fs is the old one anyway
	e.st = nil
	e.open()
}

func (e *env) log(topic string, p int32, cfg LogConfig) *Log {
	e.t.Helper()
	l, err := e.st.CreateLog(topic, p, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// appendSync appends and waits for the completion.
func appendSync(t *testing.T, l *Log, b []byte, epoch int32) AppendResult {
	t.Helper()
	ch := make(chan AppendResult, 1)
	if _, err := l.Append(b, epoch, func(r AppendResult) { ch <- r }); err != nil {
		return AppendResult{Err: err}
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("append completion never came")
		return AppendResult{}
	}
}

// readAll reads the whole log through Read and returns the batches.
func readAll(t *testing.T, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	o := l.Offsets()
	for off := o.Start; off < o.End; {
		buf, err := l.ReadCopy(off, 1<<20, -1, nil)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(buf) == 0 {
			t.Fatalf("empty read at %d below end %d", off, o.End)
		}
		for len(buf) >= batchHeaderSize {
			h := parseHeader(buf)
			if h.Size() > int64(len(buf)) {
				break // partial trailing batch
			}
			out = append(out, buf[:h.Size()])
			off = h.LastOffset() + 1
			buf = buf[h.Size():]
		}
	}
	return out
}
