package segstore

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring"
	"golang.org/x/sys/unix"
)

// closeCounter is a fake engine that counts Close calls.
type closeCounter struct {
	*ioring.Fake
	mu     sync.Mutex
	closed int
}

func (c *closeCounter) Close() error {
	c.mu.Lock()
	c.closed++
	c.mu.Unlock()
	return nil
}

func (c *closeCounter) closes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// TestCommittersSpreadLogs: with three committers every log is written by
// the one CommitterFor picked (negative picks wrap), through that
// committer's own engine, in order; the choice is asked again at reopen and
// a deleted log is reported.
func TestCommittersSpreadLogs(t *testing.T) {
	var mu sync.Mutex
	var engines []*closeCounter
	asked := map[string]int{}
	var deleted []string
	e := newEnv(t, func(c *Config) {
		c.Committers = 3
		c.NewEngine = func(i int) (ioring.Engine, error) {
			mu.Lock()
			defer mu.Unlock()
			eng := &closeCounter{Fake: ioring.NewFake()}
			engines = append(engines, eng)
			return eng, nil
		}
		c.CommitterFor = func(topic string, p int32) int {
			mu.Lock()
			asked[fmt.Sprintf("%s-%d", topic, p)]++
			mu.Unlock()
			return int(p) - 1 // partition 0 asks for -1, which is committer 2
		}
		c.LogDeleted = func(topic string, p int32) {
			mu.Lock()
			deleted = append(deleted, fmt.Sprintf("%s-%d", topic, p))
			mu.Unlock()
		}
	})
	if got := e.st.Committers(); got != 3 || len(engines) != 2 {
		t.Fatalf("Committers() = %d with %d extra engines, want 3 and 2", got, len(engines))
	}
	want := []int{2, 0, 1, 2, 0, 1} // partition p -> (p-1) mod 3
	logs := make([]*Log, len(want))
	for p := range logs {
		logs[p] = e.log("t", int32(p), LogConfig{})
		if got := logs[p].Committer(); got != want[p] {
			t.Errorf("partition %d: committer %d, want %d", p, got, want[p])
		}
	}
	const perLog = 20
	var wg sync.WaitGroup
	errs := make(chan error, len(logs)*perLog)
	for p, l := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perLog {
				r := appendSync(t, l, makeBatch(1, 100+p, int64(i), nil), 1)
				if r.Err != nil || r.BaseOffset != int64(i) {
					errs <- fmt.Errorf("partition %d append %d: offset %d err %v", p, i, r.BaseOffset, r.Err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Each committer wrote exactly its logs' bytes, and the extra ones did
	// so through their own engines.
	var wantBytes [3]int64
	for p, l := range logs {
		wantBytes[want[p]] += l.Size()
	}
	for i, s := range e.st.CommitterStats() {
		if s.Bytes != wantBytes[i] || s.Rounds == 0 {
			t.Errorf("committer %d: %+v, want %d bytes", i, s, wantBytes[i])
		}
	}
	for i, eng := range engines {
		if submits, _, _ := eng.Stats(); submits == 0 {
			t.Errorf("engine of committer %d never used", i+1)
		}
	}
	if total := e.st.Stats(); total.Bytes != wantBytes[0]+wantBytes[1]+wantBytes[2] {
		t.Errorf("Stats().Bytes = %d, want the sum %v", total.Bytes, wantBytes)
	}

	oldEngines := engines
	e.reopen()
	for _, eng := range oldEngines {
		if eng.closes() != 1 {
			t.Errorf("extra engine closed %d times by Close, want 1", eng.closes())
		}
	}
	for p := range logs {
		l := e.st.Log("t", int32(p))
		if l.Committer() != want[p] || asked[fmt.Sprintf("t-%d", p)] != 2 {
			t.Errorf("partition %d after reopen: committer %d (asked %d times)", p, l.Committer(), asked[fmt.Sprintf("t-%d", p)])
		}
		batches := readAll(t, l)
		if len(batches) != perLog {
			t.Fatalf("partition %d: %d batches after reopen, want %d", p, len(batches), perLog)
		}
		for i, b := range batches {
			w := makeBatch(1, 100+p, int64(i), nil)
			stampOffsets(w, int64(i), 1)
			if !bytes.Equal(b, w) {
				t.Fatalf("partition %d batch %d differs", p, i)
			}
		}
	}
	if err := e.st.DeleteLog("t", 4); err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0] != "t-4" {
		t.Errorf("LogDeleted calls %v, want [t-4]", deleted)
	}
}

// TestCommitterStartLocksThread: the hook runs once per committer, and
// every round runs on the OS thread the hook ran on (the goroutine stays
// locked there), which is what makes pinning from the hook stick.
func TestCommitterStartLocksThread(t *testing.T) {
	var mu sync.Mutex
	hookTid := map[int]int{}
	roundTids := map[int]bool{}
	e := newEnv(t, func(c *Config) {
		c.Committers = 2
		c.NewEngine = func(int) (ioring.Engine, error) { return ioring.NewFake(), nil }
		c.CommitterFor = func(_ string, p int32) int { return int(p) }
		c.CommitterStart = func(i int) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := hookTid[i]; dup {
				t.Errorf("CommitterStart(%d) called twice", i)
			}
			hookTid[i] = unix.Gettid()
		}
		c.OnRound = func(Round) {
			mu.Lock()
			roundTids[unix.Gettid()] = true
			mu.Unlock()
		}
	})
	logs := []*Log{e.log("t", 0, LogConfig{}), e.log("t", 1, LogConfig{})}
	// Keep the scheduler busy so an unlocked committer would migrate.
	stop := make(chan struct{})
	defer close(stop)
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					time.Sleep(10 * time.Microsecond)
				}
			}
		}()
	}
	for i := range 500 {
		for _, l := range logs {
			if r := appendSync(t, l, makeBatch(1, 10, int64(i), nil), 1); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hookTid) != 2 || hookTid[0] == hookTid[1] {
		t.Fatalf("hook threads %v, want two distinct", hookTid)
	}
	for tid := range roundTids {
		if tid != hookTid[0] && tid != hookTid[1] {
			t.Errorf("a round ran on thread %d, not on a committer's locked thread %v", tid, hookTid)
		}
	}
}

// TestCommittersOpenErrors: more than one committer needs NewEngine, and
// an engine that cannot be made fails Open after closing the ones made.
func TestCommittersOpenErrors(t *testing.T) {
	e := newEnv(t, nil)
	base := e.cfg
	base.FS, base.Dir = e.fs, "/other"

	cfg := base
	cfg.Committers = 2
	if _, err := Open(cfg); err == nil {
		t.Error("Committers=2 without NewEngine: Open succeeded")
	}

	var made []*closeCounter
	cfg.Committers = 3
	cfg.NewEngine = func(i int) (ioring.Engine, error) {
		if i == 2 {
			return nil, errors.New("no ring for you")
		}
		eng := &closeCounter{Fake: ioring.NewFake()}
		made = append(made, eng)
		return eng, nil
	}
	_, err := Open(cfg)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("no ring for you")) {
		t.Errorf("Open with a failing NewEngine: %v", err)
	}
	if len(made) != 1 || made[0].closes() != 1 {
		t.Errorf("engines made before the failure: %d, closed %v", len(made), made)
	}
}

// TestCommittersIntervalFlush: under log.flush.policy=interval each
// committer's ticker flushes its own logs, so logs on every committer
// become durable.
func TestCommittersIntervalFlush(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Committers = 2
		c.NewEngine = func(int) (ioring.Engine, error) { return ioring.NewFake(), nil }
		c.CommitterFor = func(_ string, p int32) int { return int(p) }
		c.Flush, c.FlushEvery = FlushInterval, 40*time.Millisecond
	})
	logs := []*Log{e.log("t", 0, LogConfig{}), e.log("t", 1, LogConfig{})}
	for _, l := range logs {
		if r := appendSync(t, l, makeBatch(3, 10, 1, nil), 1); r.Err != nil {
			t.Fatal(r.Err)
		}
		if o := l.Offsets(); o.Durable != 0 {
			t.Fatalf("%s: durable %d before the interval passed", l.Dir(), o.Durable)
		}
	}
	e.advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for _, l := range logs {
		for l.Offsets().Durable != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%s (committer %d) never flushed: %+v", l.Dir(), l.Committer(), l.Offsets())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
