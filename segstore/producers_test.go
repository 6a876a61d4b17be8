package segstore

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
)

// pidBatch is makeBatch with an idempotent producer's id, epoch and first
// sequence.
func pidBatch(n int, ts int64, pid int64, epoch int16, seq int32) []byte {
	b := makeBatch(n, 10, ts, nil)
	be := binary.BigEndian
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], uint32(seq))
	return fixCRC(b)
}

// prodAppend is one idempotent append: producer, epoch, first sequence,
// record count.
type prodAppend struct {
	pid   int64
	epoch int16
	seq   int32
	n     int
}

// TestProducerRules runs Kafka's idempotent-producer rules through Append:
// each case writes its history (which must be accepted), then one more
// batch, whose outcome is checked: accepted as new at wantBase, recognised
// as a duplicate of the batch at wantBase, or refused with wantErr (and
// then the log and state are unchanged).
func TestProducerRules(t *testing.T) {
	f := func(name string, history []prodAppend, probe prodAppend, wantErr error, wantBase int64, wantDup bool) {
		t.Helper()
		e := newEnv(t, nil)
		l := e.log("rules", 0, LogConfig{})
		for i, a := range history {
			if r := appendSync(t, l, pidBatch(a.n, 1, a.pid, a.epoch, a.seq), 0); r.Err != nil {
				t.Fatalf("%s: history append %d %+v: %v", name, i, a, r.Err)
			}
		}
		before, end := l.Producers(), l.Offsets().End
		r := appendSync(t, l, pidBatch(probe.n, 1, probe.pid, probe.epoch, probe.seq), 0)
		switch {
		case wantErr != nil:
			if !errors.Is(r.Err, wantErr) {
				t.Errorf("%s: got %v, want %v", name, r.Err, wantErr)
			}
			if got := l.Producers(); !reflect.DeepEqual(got, before) || l.Offsets().End != end {
				t.Errorf("%s: a refused batch changed the state or the log:\n%+v\n%+v", name, before, got)
			}
		case r.Err != nil:
			t.Errorf("%s: %v", name, r.Err)
		case r.BaseOffset != wantBase:
			t.Errorf("%s: base offset %d, want %d", name, r.BaseOffset, wantBase)
		case wantDup && l.Offsets().End != end:
			t.Errorf("%s: duplicate was written: log end %d -> %d", name, end, l.Offsets().End)
		case !wantDup && l.Offsets().End != end+int64(probe.n):
			t.Errorf("%s: log end %d -> %d, want +%d", name, end, l.Offsets().End, probe.n)
		}
	}
	five := []prodAppend{{7, 0, 0, 2}, {7, 0, 2, 3}, {7, 0, 5, 1}, {7, 0, 6, 4}, {7, 0, 10, 2}} // offsets 0,2,5,6,10
	six := append(append([]prodAppend{}, five...), prodAppend{7, 0, 12, 1})                     // offset 12

	f("first batch at 0", nil, prodAppend{7, 0, 0, 3}, nil, 0, false)
	f("unknown producer, any sequence", nil, prodAppend{7, 0, 1234, 3}, nil, 0, false)
	f("unknown producer, any epoch", nil, prodAppend{7, 9, 77, 1}, nil, 0, false)
	f("in order", five, prodAppend{7, 0, 12, 3}, nil, 12, false)
	for i, a := range five {
		f("duplicate of cached batch "+string(rune('0'+i)), five, a, nil, []int64{0, 2, 5, 6, 10}[i], true)
	}
	f("duplicate older than five", six, five[0], ErrOutOfOrderSequence, 0, false)
	f("gap", five, prodAppend{7, 0, 13, 1}, ErrOutOfOrderSequence, 0, false)
	f("repeat of a past sequence, other length", five, prodAppend{7, 0, 6, 2}, ErrOutOfOrderSequence, 0, false)
	f("epoch bump from 0", five, prodAppend{7, 1, 0, 2}, nil, 12, false)
	f("epoch bump not from 0", five, prodAppend{7, 1, 12, 2}, ErrOutOfOrderSequence, 0, false)
	f("fenced epoch", []prodAppend{{7, 3, 0, 1}}, prodAppend{7, 2, 1, 1}, ErrInvalidProducerEpoch, 0, false)
	f("duplicate needs the same epoch", []prodAppend{{7, 3, 0, 1}, {7, 4, 0, 1}}, prodAppend{7, 3, 0, 1}, ErrInvalidProducerEpoch, 0, false)
	f("duplicate in the new epoch", []prodAppend{{7, 3, 0, 1}, {7, 4, 0, 1}}, prodAppend{7, 4, 0, 1}, nil, 1, true)
	f("other producer unaffected", five, prodAppend{8, 0, 0, 1}, nil, 12, false)
	f("wrap: after MaxInt32 comes 0", []prodAppend{{7, 0, math.MaxInt32 - 2, 3}}, prodAppend{7, 0, 0, 2}, nil, 3, false)
	f("wrap inside a batch", []prodAppend{{7, 0, math.MaxInt32 - 1, 3}}, prodAppend{7, 0, 1, 1}, nil, 3, false)
	f("wrap: duplicate of the wrapping batch", []prodAppend{{7, 0, math.MaxInt32 - 1, 3}}, prodAppend{7, 0, math.MaxInt32 - 1, 3}, nil, 0, true)
	f("wrap: MaxInt32+1 is not in order", []prodAppend{{7, 0, math.MaxInt32 - 2, 3}}, prodAppend{7, 0, 1, 1}, ErrOutOfOrderSequence, 0, false)
}

func TestSequenceArithmetic(t *testing.T) {
	f := func(seq, delta, wantInc int32) {
		t.Helper()
		if got := incSeq(seq, delta); got != wantInc {
			t.Errorf("incSeq(%d, %d) = %d, want %d", seq, delta, got, wantInc)
		}
		if got := decSeq(wantInc, delta); got != seq {
			t.Errorf("decSeq(%d, %d) = %d, want %d", wantInc, delta, got, seq)
		}
	}
	f(0, 0, 0)
	f(5, 4, 9)
	f(math.MaxInt32, 0, math.MaxInt32)
	f(math.MaxInt32, 1, 0)
	f(math.MaxInt32-1, 3, 1)
	f(math.MaxInt32-4, 4, math.MaxInt32)
}

func TestProducerBatchValidation(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("v", 0, LogConfig{})
	f := func(name string, b []byte, want error) {
		t.Helper()
		if _, err := l.Append(b, 0, func(AppendResult) {}); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
		if l.Offsets().End != 0 || len(l.Producers()) != 0 {
			t.Errorf("%s: the refused append left something behind", name)
		}
	}
	setAttr := func(b []byte, bit uint16) []byte {
		binary.BigEndian.PutUint16(b[offAttributes:], binary.BigEndian.Uint16(b[offAttributes:])|bit)
		return fixCRC(b)
	}
	f("transactional", setAttr(pidBatch(1, 1, 7, 0, 0), attrTransactional), ErrTransactionalNotSupported)
	f("control", setAttr(pidBatch(1, 1, 7, 0, 0), attrControl), ErrTransactionalNotSupported)
	f("negative sequence", pidBatch(1, 1, 7, 0, -5), ErrInvalidRecord)
	f("negative epoch", pidBatch(1, 1, 7, -2, 0), ErrInvalidRecord)
	f("producer id below -1", pidBatch(1, 1, -2, 0, 0), ErrInvalidRecord)
	// Several batches in one append are all-or-nothing: the second one's gap
	// takes the first one back.
	two := append(pidBatch(2, 1, 7, 0, 0), pidBatch(1, 1, 7, 0, 5)...)
	f("second batch out of order", two, ErrOutOfOrderSequence)
	if r := appendSync(t, l, append(pidBatch(2, 1, 7, 0, 0), pidBatch(1, 1, 7, 0, 2)...), 0); r.Err != nil {
		t.Fatalf("two in-order batches in one append: %v", r.Err)
	}
	mixed := append(pidBatch(1, 1, 7, 0, 2), pidBatch(1, 1, 7, 0, 3)...)
	if _, err := l.Append(mixed, 0, func(AppendResult) {}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("duplicate and new batch in one append: %v, want ErrInvalidRecord", err)
	}
	if r := appendSync(t, l, pidBatch(1, 1, 7, 0, 3), 0); r.Err != nil || r.BaseOffset != 3 {
		t.Errorf("after the refused mixed append: %+v", r)
	}
}
