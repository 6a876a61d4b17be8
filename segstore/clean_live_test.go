package segstore

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// TestCleanWhileReadingAndAppending runs the cleaner over and over while
// producers append and readers scan the log from its start: every read sees
// whole, CRC-correct batches with rising offsets, each record the one
// written at its offset; in the end the log is compacted.
func TestCleanWhileReadingAndAppending(t *testing.T) {
	e := compactEnv(t, nil)
	cfg := compactCfg(4 << 10)
	cfg.MinCleanableRatio = 0.01
	l := e.log("live", 0, cfg)
	var mu sync.Mutex // held across Append until the record is noted
	all := map[int64]logRec{}
	latest := map[string]int64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	wg.Add(1)
	go func() { // producer
		defer wg.Done()
		rng := rand.New(rand.NewSource(4))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var recs []kv
			for j := 0; j < 1+rng.Intn(20); j++ {
				recs = append(recs, rec(fmt.Sprintf("k%03d", rng.Intn(200)), fmt.Sprintf("v%d.%d", i, j)))
			}
			mu.Lock()
			base, err := l.Append(keyedBatch(recs, 1, nil, -1, 0), 0, func(AppendResult) {})
			if err == nil {
				for d, x := range recs {
					all[base+int64(d)] = logRec{off: base + int64(d), key: *x.key, hasKey: true, val: x.val}
					latest[*x.key] = base + int64(d)
				}
			}
			mu.Unlock()
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() { // reader
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := scanLog(l, &mu, all); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	passes := 0
	for deadline := time.Now().Add(400 * time.Millisecond); time.Now().Before(deadline); {
		_, ok, err := e.st.Clean()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			passes++
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if passes < 3 {
		t.Fatalf("only %d passes ran", passes)
	}
	waitIdle(t, l)
	rollWith(t, l, 1)
	cleanAll(t, e.st)
	checkCompacted(t, l, all, latest)
	t.Logf("%d passes under load; %d records written, %d keys", passes, len(all), len(latest))
}

// scanLog reads l from its start to its end as a consumer would.
func scanLog(l *Log, mu *sync.Mutex, all map[int64]logRec) error {
	o := l.Offsets()
	next := int64(-1)
	for off := o.Start; off < o.End; {
		buf, err := l.ReadCopy(off, 64<<10, o.End, nil)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if len(buf) == 0 {
			return nil // the rest of [off, end) was cleaned away
		}
		var batches [][]byte
		for len(buf) > 0 {
			h := parseHeader(buf)
			batches = append(batches, buf[:h.Size()])
			off = h.LastOffset() + 1
			buf = buf[h.Size():]
		}
		recs, _, err := decodeBatches(batches)
		if err != nil {
			return err
		}
		mu.Lock()
		for _, r := range recs {
			if r.off <= next {
				mu.Unlock()
				return fmt.Errorf("offset %d after %d", r.off, next)
			}
			next = r.off
			if want := all[r.off]; want != r {
				mu.Unlock()
				return fmt.Errorf("offset %d holds %v, was written as %v", r.off, r, want)
			}
		}
		mu.Unlock()
	}
	return nil
}

// waitIdle waits until every append to l has completed.
func waitIdle(t *testing.T, l *Log) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		l.mu.Lock()
		n := l.inflight
		l.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("appends never completed")
		}
		time.Sleep(time.Millisecond)
	}
}
