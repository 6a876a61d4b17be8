package group

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// asyncLog completes appends on its own goroutine, in order, like segstore's
// committer.
type asyncLog struct {
	inner *fakeLog
	ch    chan heldAppend
	done  chan struct{}
}

func newAsyncLog() *asyncLog {
	l := &asyncLog{inner: newFakeLog(), ch: make(chan heldAppend, 1024), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for a := range l.ch {
			l.inner.Append(a.part, a.recs, a.done)
		}
	}()
	return l
}

func (l *asyncLog) Append(part int32, recs []Record, done func(error)) {
	l.ch <- heldAppend{part, recs, done}
}

// TestConcurrentUse drives commits, fetches, joins, heartbeats and timers
// from many goroutines against a log completing on another one; run with
// -race. Every request must be answered exactly once and the last commit of
// each partition must win.
func TestConcurrentUse(t *testing.T) {
	alog := newAsyncLog()
	defer func() { close(alog.ch); <-alog.done }()
	h := newHarnessOn(t, alog.inner)
	h.c = New(h.cfg, alog)
	defer h.c.Close()
	for p := int32(0); p < 50; p++ {
		if err := h.c.Load(p, func(func(k, v []byte) bool) {}); err != nil {
			t.Fatal(err)
		}
	}

	const writers, commits = 6, 200
	var wg sync.WaitGroup
	var answers atomic.Int64
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			group := "c-" + itoa(int32(w))
			var mine sync.WaitGroup
			for i := 1; i <= commits; i++ {
				mine.Add(1)
				h.c.Handle(commitReq(group, "", -1, map[string]int64{"t1/0": int64(i), "t2/1": int64(i)}), func(r kmsg.Response) {
					for _, code := range commitCodes(r) {
						if code != 0 {
							t.Errorf("commit: %s", errName(code))
						}
					}
					answers.Add(1)
					mine.Done()
				})
				if i%50 == 0 {
					fr := kmsg.NewPtrOffsetFetchRequest()
					fr.Version = 8
					fr.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group}}
					h.c.Handle(fr, func(kmsg.Response) { answers.Add(1) })
				}
			}
			mine.Wait()
		}(w)
	}

	// Members join one group concurrently (v3: no member id round trip).
	const joiners = 4
	var joinWG, sent sync.WaitGroup
	gens := make([]int32, joiners)
	leaders := make([]string, joiners)
	for j := 0; j < joiners; j++ {
		joinWG.Add(1)
		sent.Add(1)
		go func(j int) {
			defer joinWG.Done()
			got := make(chan *kmsg.JoinGroupResponse, 1)
			h.c.Handle(joinReq("shared", "", withVersion(3)), func(r kmsg.Response) { got <- r.(*kmsg.JoinGroupResponse) })
			sent.Done()
			r := <-got
			gens[j], leaders[j] = r.Generation, r.LeaderID
			if r.ErrorCode != 0 {
				t.Errorf("join: %s", errName(r.ErrorCode))
			}
		}(j)
	}
	sent.Wait()
	for i := 0; i < 40; i++ { // the initial delay runs on the fake clock
		h.clock.Advance(time.Second)
	}
	joinWG.Wait()
	wg.Wait()
	for j := 1; j < joiners; j++ {
		if gens[j] != gens[0] || leaders[j] != leaders[0] {
			t.Fatalf("members disagree: %v %v", gens, leaders)
		}
	}
	if n := answers.Load(); n != writers*(commits+commits/50) {
		t.Fatalf("%d answers", n)
	}
	for w := 0; w < writers; w++ {
		got := h.fetch("c-" + itoa(int32(w)))
		if got["t1/0"] != commits || got["t2/1"] != commits {
			t.Fatalf("group %d: %v", w, got)
		}
	}
}
