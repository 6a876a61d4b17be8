package segstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"golang.org/x/sys/unix"
)

// TestDuplicateOfInflightBatch: a retry that arrives while the original is
// still being written answers only after the original, with its offsets —
// and fails when the original fails, after which the retry is new again.
func TestDuplicateOfInflightBatch(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			e := newEnv(t, nil)
			l := e.log("dup", 0, LogConfig{})
			if r := appendSync(t, l, pidBatch(2, 1, 7, 0, 0), 0); r.Err != nil { // offsets 0-1
				t.Fatal(r.Err)
			}
			g := newGate(e)
			if fail {
				g.setFault(func(op *ioring.Op) ioring.Fault {
					if op.Kind == ioring.OpWrite && op.Len() > 0 {
						return ioring.Fault{Written: 7, Err: unix.ENOSPC}
					}
					return ioring.Fault{}
				})
			}
			var mu sync.Mutex
			var order []string
			results := make(chan AppendResult, 2)
			cb := func(name string) func(AppendResult) {
				return func(r AppendResult) {
					mu.Lock()
					order = append(order, name)
					mu.Unlock()
					results <- r
				}
			}
			orig := pidBatch(3, 1, 7, 0, 2)
			retry := append([]byte(nil), orig...)
			if base, err := l.Append(orig, 0, cb("original")); err != nil || base != 2 {
				t.Fatalf("original: %d %v", base, err)
			}
			waitCh(t, g.entered) // the original's round is on "disk"
			if base, err := l.Append(retry, 0, cb("retry")); err != nil || base != 2 {
				t.Fatalf("retry of an in-flight batch: %d %v, want base 2", base, err)
			}
			g.release <- struct{}{}
			if !fail {
				waitCh(t, g.entered) // the retry's round: nothing to write
				g.release <- struct{}{}
			}
			r1, r2 := waitCh(t, results), waitCh(t, results)
			if order[0] != "original" {
				t.Fatalf("completion order %v: the retry answered before its original", order)
			}
			if fail {
				if !errors.Is(r1.Err, unix.ENOSPC) || !errors.Is(r2.Err, unix.ENOSPC) {
					t.Fatalf("original %v, retry %v: both must fail", r1.Err, r2.Err)
				}
				e.eng.Inject, e.eng.BeforeDo = nil, nil
				// Space is back: the retry is written, not taken for a
				// duplicate of a batch that never reached the log.
				if r := appendSync(t, l, pidBatch(3, 1, 7, 0, 2), 0); r.Err != nil || r.BaseOffset != 2 || l.Offsets().End != 5 {
					t.Fatalf("retry after the failed write: %+v, end %d", r, l.Offsets().End)
				}
			} else {
				if r1.Err != nil || r2.Err != nil || r2.BaseOffset != 2 || r2.LastOffset != 4 {
					t.Fatalf("original %+v, retry %+v", r1, r2)
				}
				if got := l.Offsets().End; got != 5 {
					t.Fatalf("log end %d after original and retry, want 5", got)
				}
				e.eng.Inject, e.eng.BeforeDo = nil, nil
			}
			if got := readAll(t, l); len(got) != 2 {
				t.Fatalf("log holds %d batches, want 2", len(got))
			}
		})
	}
}

// writeProducers appends rounds of batches from producers 1..n in turn, with
// batch timestamps from the env's clock, so logs with small segments roll.
func writeProducers(t *testing.T, e *env, l *Log, producers, rounds int, seqs map[int64]int32) {
	t.Helper()
	for r := 0; r < rounds; r++ {
		for p := int64(1); p <= int64(producers); p++ {
			n := 1 + int(p+int64(r))%3
			b := pidBatch(n, e.now().UnixMilli(), p, 0, seqs[p])
			if res := appendSync(t, l, b, 0); res.Err != nil {
				t.Fatalf("producer %d round %d: %v", p, r, res.Err)
			}
			seqs[p] += int32(n)
		}
	}
}

// lastBatches is the part of the producer state a snapshot keeps.
func lastBatches(ps []ProducerState) []ProducerState {
	out := make([]ProducerState, len(ps))
	for i, p := range ps {
		out[i] = p
		out[i].Batches = p.Batches[len(p.Batches)-1:]
	}
	return out
}

// TestProducerStateSurvivesRestart: after a clean shutdown (snapshot at the
// LEO) and after crashes (snapshot at the last roll plus replay, or replay of
// the whole log), the rebuilt state is the one before: the same producers,
// epochs and last batches — everything, where the replay saw every batch —
// and both duplicates and next sequences are recognised.
func TestProducerStateSurvivesRestart(t *testing.T) {
	f := func(name string, segBytes int64, restart func(e *env), full bool) {
		t.Helper()
		e := newEnv(t, nil)
		l := e.log("restart", 0, LogConfig{SegmentBytes: segBytes})
		seqs := map[int64]int32{}
		writeProducers(t, e, l, 4, 12, seqs)
		before := l.Producers()
		restart(e)
		l = e.st.Log("restart", 0)
		got := l.Producers()
		if full && !reflect.DeepEqual(got, before) {
			t.Fatalf("%s: state after restart\n got %+v\nwant %+v", name, got, before)
		}
		if !reflect.DeepEqual(lastBatches(got), lastBatches(before)) {
			t.Fatalf("%s: last batches after restart\n got %+v\nwant %+v", name, lastBatches(got), lastBatches(before))
		}
		end := l.Offsets().End
		for _, p := range before {
			last := p.Batches[len(p.Batches)-1]
			n := int(last.LastOffset - last.FirstOffset + 1)
			r := appendSync(t, l, pidBatch(n, 1, p.ID, 0, last.FirstSequence), 0)
			if r.Err != nil || r.BaseOffset != last.FirstOffset || l.Offsets().End != end {
				t.Fatalf("%s: retry of producer %d's last batch: %+v (end %d -> %d)", name, p.ID, r, end, l.Offsets().End)
			}
		}
		for _, p := range before {
			if r := appendSync(t, l, pidBatch(1, 1, p.ID, 0, seqs[p.ID]), 0); r.Err != nil {
				t.Fatalf("%s: producer %d's next batch: %v", name, p.ID, r.Err)
			}
			if r := appendSync(t, l, pidBatch(1, 1, p.ID, 0, seqs[p.ID]+2), 0); !errors.Is(r.Err, ErrOutOfOrderSequence) {
				t.Fatalf("%s: producer %d's gap: %v", name, p.ID, r.Err)
			}
		}
	}
	clean := func(e *env) { e.reopen() }
	crash := func(e *env) { e.crash(vfs.DropUnsynced, nil) }
	torn := func(e *env) { e.crash(vfs.TornTail, rand.New(rand.NewSource(3))) }
	f("clean, one segment", 1<<20, clean, false)
	f("clean, rolled", 1<<10, clean, false)
	f("crash, one segment (whole-log replay)", 1<<20, crash, true)
	f("crash, rolled", 1<<10, crash, false)
	f("torn tail, rolled", 1<<10, torn, false)
	// The state after a second restart with nothing written in between is
	// the first restart's: the snapshot at the LEO is not rewritten.
	e := newEnv(t, nil)
	l := e.log("twice", 0, LogConfig{})
	writeProducers(t, e, l, 2, 3, map[int64]int32{})
	e.reopen()
	once := e.st.Log("twice", 0).Producers()
	e.reopen()
	if twice := e.st.Log("twice", 0).Producers(); !reflect.DeepEqual(once, twice) {
		t.Fatalf("second restart changed the state:\n%+v\n%+v", once, twice)
	}
}

// TestTruncateToRebuildsProducers: after a truncation the state is the one
// the kept batches give, snapshots past the cut are gone, and a re-sent cut
// batch is written again rather than taken for a duplicate.
func TestTruncateToRebuildsProducers(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("trunc", 0, LogConfig{SegmentBytes: 1 << 10})
	seqs := map[int64]int32{}
	writeProducers(t, e, l, 2, 4, seqs)
	cut := l.Offsets().End
	want := l.Producers()
	wantSeqs := map[int64]int32{1: seqs[1], 2: seqs[2]}
	writeProducers(t, e, l, 2, 20, seqs)
	if len(mustList(t, e.fs, l.dir)) == 0 {
		t.Fatal("no roll snapshot past the cut; the test needs one")
	}
	if err := l.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	if got := l.Producers(); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after TruncateTo(%d)\n got %+v\nwant %+v", cut, got, want)
	}
	for _, off := range mustList(t, e.fs, l.dir) {
		if off > cut {
			t.Fatalf("snapshot %d survived the truncation to %d", off, cut)
		}
	}
	r := appendSync(t, l, pidBatch(1, 1, 1, 0, wantSeqs[1]), 0)
	if r.Err != nil || r.BaseOffset != cut {
		t.Fatalf("re-sent batch after truncation: %+v, want new at %d", r, cut)
	}
}

// TestProducerExpiry: producers idle for producer.id.expiration.ms are
// forgotten (a clock moved by the test), and then any sequence is accepted.
func TestProducerExpiry(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ProducerIDExpiration = time.Hour })
	l := e.log("exp", 0, LogConfig{})
	ts := e.now().UnixMilli()
	appendSync(t, l, pidBatch(1, ts, 1, 0, 0), 0)
	e.advance(40 * time.Minute)
	appendSync(t, l, pidBatch(1, e.now().UnixMilli(), 2, 0, 0), 0)
	e.advance(30 * time.Minute)
	e.st.ExpireProducers()
	if got := l.Producers(); len(got) != 1 || got[0].ID != 2 {
		t.Fatalf("after 70 minutes: %+v, want only producer 2", got)
	}
	if r := appendSync(t, l, pidBatch(1, e.now().UnixMilli(), 1, 0, 500), 0); r.Err != nil {
		t.Fatalf("expired producer with any sequence: %v", r.Err)
	}
	if r := appendSync(t, l, pidBatch(1, 1, 2, 0, 500), 0); !errors.Is(r.Err, ErrOutOfOrderSequence) {
		t.Fatalf("live producer with a gap: %v", r.Err)
	}
	// Expired producers do not come back from snapshots or replay: producer
	// 1 wrote last at minute 70, producer 2 at minute 40.
	appendSync(t, l, pidBatch(1, e.now().UnixMilli(), 1, 0, 501), 0)
	e.advance(30 * time.Minute)
	e.crash(vfs.DropUnsynced, nil) // no snapshot: both come back from the log
	if got := e.st.Log("exp", 0).Producers(); len(got) != 1 || got[0].ID != 1 {
		t.Fatalf("after a crash at minute 100: %+v, want only producer 1", got)
	}
	e.reopen() // from the snapshot written at shutdown
	if got := e.st.Log("exp", 0).Producers(); len(got) != 1 || got[0].ID != 1 {
		t.Fatalf("after a restart at minute 100: %+v, want only producer 1", got)
	}
}

// TestRetentionKeepsProducers: deleting records keeps their producers (only
// expiry removes them) and deletes the snapshots of deleted segments.
func TestRetentionKeepsProducers(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("ret", 0, LogConfig{SegmentBytes: 1 << 10})
	seqs := map[int64]int32{}
	writeProducers(t, e, l, 1, 10, seqs) // producer 1 only in the old segments
	for i := 0; i < 20; i++ {
		appendSync(t, l, pidBatch(2, 1, 9, 0, int32(2*i)), 0)
	}
	want := l.Producers()
	start, err := l.DeleteRecords(l.Offsets().End - 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Producers(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DeleteRecords changed the producers:\n got %+v\nwant %+v", got, want)
	}
	l.mu.Lock()
	first := l.segs[0].base
	l.mu.Unlock()
	for _, off := range mustList(t, e.fs, l.dir) {
		if off < first {
			t.Fatalf("snapshot %d of a deleted segment survived (start %d, first segment %d)", off, start, first)
		}
	}
	if r := appendSync(t, l, pidBatch(1, 1, 1, 0, seqs[1]+1), 0); !errors.Is(r.Err, ErrOutOfOrderSequence) {
		t.Fatalf("producer whose records were deleted still has its sequence: %v", r.Err)
	}
}

// TestReplayAcceptsEmptiedBatches: compaction may keep a producer's last
// batch with no records (base and last offset kept); the replay counts it.
func TestReplayAcceptsEmptiedBatches(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("emptied", 0, LogConfig{})
	ts := e.now().UnixMilli() // old timestamps would expire the producer at open
	if r := appendSync(t, l, pidBatch(2, ts, 7, 0, 0), 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	// Offsets 2-4, sequences 2-4, records compacted away.
	b := pidBatch(3, ts, 7, 0, 2)[:batchHeaderSize]
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], 2)
	be.PutUint32(b[offBatchLength:], batchHeaderSize-logOverhead)
	be.PutUint32(b[offRecordCount:], 0)
	fixCRC(b)
	f, err := e.fs.OpenRW(segName(l.dir, 0, ".log"))
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	f.WriteAt(b, size)
	f.Sync()
	f.Close()
	e.open()
	l = e.st.Log("emptied", 0)
	if got := l.Offsets().End; got != 5 {
		t.Fatalf("log end %d, want 5", got)
	}
	ps := l.Producers()
	want := ProducerBatch{FirstSequence: 2, LastSequence: 4, FirstOffset: 2, LastOffset: 4, MaxTimestamp: ts + 2}
	if len(ps) != 1 || len(ps[0].Batches) != 2 || ps[0].Batches[1] != want {
		t.Fatalf("producers %+v, want the emptied batch %+v last", ps, want)
	}
	if r := appendSync(t, l, pidBatch(3, 1, 7, 0, 2), 0); r.Err != nil || r.BaseOffset != 2 || l.Offsets().End != 5 {
		t.Fatalf("retry of the emptied batch: %+v", r)
	}
	if r := appendSync(t, l, pidBatch(1, 1, 7, 0, 5), 0); r.Err != nil || r.BaseOffset != 5 {
		t.Fatalf("next batch: %+v", r)
	}
}
