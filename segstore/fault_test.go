package segstore

import (
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"golang.org/x/sys/unix"
)

// gate holds the fake engine's rounds until the test lets each one go, so the
// test decides exactly what each round contains.
type gate struct {
	mu      sync.Mutex
	entered chan struct{}
	release chan struct{}
	fault   func(op *ioring.Op) ioring.Fault
}

func newGate(e *env) *gate {
	g := &gate{entered: make(chan struct{}, 100), release: make(chan struct{}, 100)}
	e.eng.BeforeDo = func([]ioring.Op) {
		g.entered <- struct{}{}
		<-g.release
	}
	e.eng.Inject = func(op *ioring.Op) ioring.Fault {
		g.mu.Lock()
		f := g.fault
		g.mu.Unlock()
		if f != nil {
			return f(op)
		}
		return ioring.Fault{}
	}
	return g
}

func (g *gate) setFault(f func(op *ioring.Op) ioring.Fault) {
	g.mu.Lock()
	g.fault = f
	g.mu.Unlock()
}

func waitCh[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

func TestGroupCommitSharesOneSubmission(t *testing.T) {
	e := newEnv(t, nil)
	g := newGate(e)
	const parts = 64
	logs := make([]*Log, parts)
	for p := range logs {
		logs[p] = e.log("gc", int32(p), LogConfig{})
	}
	done := make(chan AppendResult, 2*parts)
	cb := func(r AppendResult) { done <- r }
	if _, err := logs[0].Append(makeBatch(1, 100, 1, nil), 0, cb); err != nil {
		t.Fatal(err)
	}
	waitCh(t, g.entered) // round 1 (one append) is on "disk"
	for p := range logs {
		for k := 0; k < 2; k++ {
			if _, err := logs[p].Append(makeBatch(1, 100, 1, nil), 0, cb); err != nil {
				t.Fatal(err)
			}
		}
	}
	g.release <- struct{}{}
	waitCh(t, g.entered) // round 2 holds all 128 appends
	g.release <- struct{}{}
	for i := 0; i < 2*parts+1; i++ {
		if r := waitCh(t, done); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	submits, writes, syncs := e.eng.Stats()
	if submits != 2 || writes != parts+1 || syncs != parts+1 {
		t.Fatalf("129 appends over 64 logs took %d submissions, %d writes, %d syncs; want 2, 65, 65", submits, writes, syncs)
	}
}

func TestENOSPCFailsCleanlyAndRecovers(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("full", 0, LogConfig{})
	if r := appendSync(t, l, makeBatch(2, 100, 1, nil), 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	g := newGate(e)
	g.setFault(func(op *ioring.Op) ioring.Fault {
		if op.Kind == ioring.OpWrite {
			return ioring.Fault{Written: op.Len() / 2, Err: unix.ENOSPC}
		}
		return ioring.Fault{}
	})
	res := make(chan AppendResult, 10)
	cb := func(r AppendResult) { res <- r }
	if base, err := l.Append(makeBatch(3, 100, 1, nil), 0, cb); err != nil || base != 2 {
		t.Fatalf("append: %d %v", base, err)
	}
	waitCh(t, g.entered)
	// Queued behind the failing write: must fail too, its offset rewound.
	if base, err := l.Append(makeBatch(1, 100, 1, nil), 0, cb); err != nil || base != 5 {
		t.Fatalf("append: %d %v", base, err)
	}
	g.release <- struct{}{}
	for i := 0; i < 2; i++ {
		if r := waitCh(t, res); !errors.Is(r.Err, unix.ENOSPC) || !errors.Is(r.Err, ErrStorage) {
			t.Fatalf("append %d: %v, want storage error wrapping ENOSPC", i, r.Err)
		}
	}
	if o := l.Offsets(); o.End != 2 {
		t.Fatalf("LEO %d after failed appends", o.End)
	}
	if sz, _ := l.active().f.Size(); sz != l.active().size {
		t.Fatalf("file holds %d bytes, log %d: partial write left behind", sz, l.active().size)
	}
	// Space frees: appends work again, at the rewound offset.
	g.setFault(nil)
	e.eng.Inject, e.eng.BeforeDo = nil, nil
	if r := appendSync(t, l, makeBatch(1, 100, 1, nil), 0); r.Err != nil || r.BaseOffset != 2 {
		t.Fatalf("after ENOSPC: %+v", r)
	}
	e.crash(vfs.TornTail, rand.New(rand.NewSource(1)))
	if got := readAll(t, e.st.Log("full", 0)); len(got) != 2 {
		t.Fatalf("%d batches after crash, want 2", len(got))
	}
}

func TestFsyncErrorIsSticky(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("eio", 0, LogConfig{})
	other := e.log("fine", 0, LogConfig{})
	appendSync(t, l, makeBatch(1, 10, 1, nil), 0)
	e.eng.Inject = func(op *ioring.Op) ioring.Fault {
		if op.Kind == ioring.OpSync && op.File.Name() == l.active().f.Name() {
			return ioring.Fault{Err: unix.EIO}
		}
		return ioring.Fault{}
	}
	if r := appendSync(t, l, makeBatch(1, 10, 1, nil), 0); !errors.Is(r.Err, unix.EIO) {
		t.Fatalf("append with failing fsync: %v", r.Err)
	}
	e.eng.Inject = nil // the disk "recovers": the log must not trust it again
	if _, err := l.Append(makeBatch(1, 10, 1, nil), 0, nil); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after failed fsync: %v, want sticky storage error", err)
	}
	if _, err := l.Read(0, 100, -1); !errors.Is(err, ErrStorage) {
		t.Fatalf("read after failed fsync: %v", err)
	}
	if r := appendSync(t, other, makeBatch(1, 10, 1, nil), 0); r.Err != nil {
		t.Fatalf("another log is unaffected: %v", r.Err)
	}
}

func TestWriteEIOIsSticky(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("eio", 0, LogConfig{})
	e.eng.Inject = func(op *ioring.Op) ioring.Fault {
		if op.Kind == ioring.OpWrite {
			return ioring.Fault{Written: 10, Err: unix.EIO}
		}
		return ioring.Fault{}
	}
	if r := appendSync(t, l, makeBatch(1, 10, 1, nil), 0); !errors.Is(r.Err, unix.EIO) {
		t.Fatalf("got %v", r.Err)
	}
	e.eng.Inject = nil
	if _, err := l.Append(makeBatch(1, 10, 1, nil), 0, nil); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after write EIO: %v", err)
	}
}

func TestIntervalAndOSPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy    FlushPolicy
		msgs      int64
		wantSyncs int64
	}{{FlushOS, 0, 0}, {FlushInterval, 4, 2}} {
		e := newEnv(t, func(c *Config) { c.Flush, c.FlushMessages = tc.policy, tc.msgs })
		l := e.log("p", 0, LogConfig{})
		for i := 0; i < 10; i++ {
			if r := appendSync(t, l, makeBatch(1, 10, 1, nil), 0); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		_, _, syncs := e.eng.Stats()
		if syncs != tc.wantSyncs {
			t.Errorf("%s: %d syncs for 10 single-record appends, want %d", tc.policy, syncs, tc.wantSyncs)
		}
		o := l.Offsets()
		if o.End != 10 || (tc.policy == FlushOS && o.Durable != 0) {
			t.Errorf("%s: offsets %+v", tc.policy, o)
		}
	}
}
