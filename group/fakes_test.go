package group

import (
	"slices"
	"sync"
	"time"
)

// fakeClock runs timers only when the test advances it, in deadline order,
// on the test's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	seq  int
	f    func()
	done bool // fired or stopped
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Advance moves time forward by d, firing every timer due on the way (timers
// armed by fired callbacks included).
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.done {
				continue
			}
			live = append(live, t)
			if !t.at.After(target) && (next == nil || t.at.Before(next.at) || t.at.Equal(next.at) && t.seq < next.seq) {
				next = t
			}
		}
		c.timers = live
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.done = true
		c.mu.Unlock()
		next.f()
	}
}

// fakeLog keeps durable records per partition. By default appends complete
// synchronously inside Append; hold parks them until release; fail makes
// them fail.
type fakeLog struct {
	mu      sync.Mutex
	parts   map[int32][]Record
	hold    bool
	fail    error
	held    []heldAppend
	appends int
}

type heldAppend struct {
	part int32
	recs []Record
	done func(error)
}

func newFakeLog() *fakeLog { return &fakeLog{parts: map[int32][]Record{}} }

func (l *fakeLog) Append(part int32, recs []Record, done func(error)) {
	cp := make([]Record, len(recs))
	for i, r := range recs {
		cp[i] = Record{Key: slices.Clone(r.Key)}
		if r.Value != nil {
			cp[i].Value = slices.Clone(r.Value)
		}
	}
	l.mu.Lock()
	l.appends++
	if err := l.fail; err != nil {
		l.mu.Unlock()
		done(err)
		return
	}
	if l.hold {
		l.held = append(l.held, heldAppend{part, cp, done})
		l.mu.Unlock()
		return
	}
	l.parts[part] = append(l.parts[part], cp...)
	l.mu.Unlock()
	done(nil)
}

func (l *fakeLog) setHold(b bool)    { l.mu.Lock(); l.hold = b; l.mu.Unlock() }
func (l *fakeLog) setFail(err error) { l.mu.Lock(); l.fail = err; l.mu.Unlock() }

// release completes the held appends in order; err non-nil fails them.
func (l *fakeLog) release(err error) int {
	l.mu.Lock()
	held := l.held
	l.held = nil
	if err == nil {
		for _, h := range held {
			l.parts[h.part] = append(l.parts[h.part], h.recs...)
		}
	}
	l.mu.Unlock()
	for _, h := range held {
		h.done(err)
	}
	return len(held)
}

func (l *fakeLog) records(part int32) []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.parts[part])
}

// iter replays a partition for Load.
func (l *fakeLog) iter(part int32) func(yield func(k, v []byte) bool) {
	recs := l.records(part)
	return func(yield func(k, v []byte) bool) {
		for _, r := range recs {
			if !yield(r.Key, r.Value) {
				return
			}
		}
	}
}
