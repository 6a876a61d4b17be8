package segstore

// O_DIRECT and buffered I/O on one file stay coherent on the real file
// system, with both real engines, cold/hot switches mid-segment and concurrent
// CRC-checking readers; a clean close leaves files exactly their logs' size.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicemq/sluice/ioring"
)

func TestDirectColdHotCoherencyRealFS(t *testing.T) {
	for _, engine := range []string{"uring", "sync"} {
		for _, flush := range []FlushPolicy{FlushAck, FlushOS} {
			t.Run(engine+"/"+fmt.Sprint(flush), func(t *testing.T) {
				eng, err := ioring.New(ioring.Options{Engine: engine, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					t.Skip(err)
				}
				st := diskStore(t, Config{Engine: eng, Flush: flush})
				dir := st.cfg.Dir
				l, err := st.CreateLog("c", 0, LogConfig{SegmentBytes: 64 << 10})
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				var want [][]byte
				var stop atomic.Bool
				var wg sync.WaitGroup
				var bad atomic.Value
				for r := 0; r < 4; r++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for !stop.Load() {
							o := l.Offsets()
							for off := o.Start; off < o.End; {
								buf, err := l.ReadCopy(off, 1<<20, -1, nil)
								if err != nil || len(buf) == 0 {
									bad.Store("read error")
									return
								}
								for len(buf) >= batchHeaderSize {
									h := parseHeader(buf)
									if h.Size() > int64(len(buf)) {
										break
									}
									if _, err := validateStored(buf[:h.Size()]); err != nil {
										bad.Store(fmt.Sprintf("corrupt batch read at offset %d", off))
										return
									}
									off = h.LastOffset() + 1
									buf = buf[h.Size():]
								}
							}
						}
					}()
				}
				rng := rand.New(rand.NewSource(7))
				cold := true
				l.SetColdWrites(true)
				for i := 0; i < 400; i++ {
					if rng.Intn(10) == 0 {
						cold = !cold
						l.SetColdWrites(cold)
					}
					b := makeBatch(1+rng.Intn(3), rng.Intn(700), 1, nil)
					if r := appendSync(t, l, b, 0); r.Err != nil {
						t.Fatal(r.Err)
					}
					mu.Lock()
					want = append(want, b)
					mu.Unlock()
				}
				stop.Store(true)
				wg.Wait()
				if v := bad.Load(); v != nil {
					t.Fatal(v)
				}
				got := readAll(t, l)
				if len(got) != len(want) {
					t.Fatalf("%d batches, want %d", len(got), len(want))
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("batch %d differs", i)
					}
				}
				if st.noDirect.Load() {
					t.Fatal("direct writes got disabled")
				}
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				ents, _ := os.ReadDir(filepath.Join(dir, "c-0"))
				var total int64
				for _, e := range ents {
					if filepath.Ext(e.Name()) == ".log" {
						fi, _ := e.Info()
						total += fi.Size()
					}
				}
				var sum int64
				for _, b := range want {
					sum += int64(len(b))
				}
				if total != sum {
					t.Fatalf("segment files hold %d bytes after a clean close, want %d", total, sum)
				}
			})
		}
	}
}

// Stats.Bytes (sluice_storage_bytes_written_total) counts appended bytes, not
// the re-written partial block and zero padding of each direct write.
func TestDirectStatsCountLogicalBytes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Flush = FlushAck })
	l := e.log("s", 0, LogConfig{})
	l.SetColdWrites(true)
	var logical int64
	for i := 0; i < 50; i++ {
		b := makeBatch(1, 100, 1, nil)
		logical += int64(len(b))
		if r := appendSync(t, l, b, 0); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if got := e.st.Stats().Bytes; got != logical {
		t.Fatalf("Stats().Bytes = %d for %d bytes appended", got, logical)
	}
}
