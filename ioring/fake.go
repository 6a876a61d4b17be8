package ioring

import (
	"sync/atomic"
)

// Fault is what a Fake does to one op instead of running it normally.
type Fault struct {
	// Written is how many bytes of a write land before Err is returned: a write
	// that fails part way, as ENOSPC does.
	Written int64
	// Err fails the op. A nil Err means no fault.
	Err error
}

// Fake is an Engine for tests: it runs ops one after another through the
// vfs.File methods, so it works on vfs.MemFS (whose CrashClone then models a
// power cut), and injects faults chosen by Inject.
type Fake struct {
	// Inject, when set, is asked about every op before it runs; it is called
	// from the goroutine running Do.
	Inject func(op *Op) Fault
	// BeforeDo, when set, runs at the start of every Do with its ops; tests
	// use it to hold a round while they queue the next one.
	BeforeDo func(ops []Op)

	submits, writes, syncs atomic.Int64
}

// NewFake returns a Fake with no faults.
func NewFake() *Fake { return &Fake{} }

func (f *Fake) Name() string { return "fake" }
func (f *Fake) Close() error { return nil }

// Stats reports how many Do calls, writes and syncs ran. Safe for concurrent use.
func (f *Fake) Stats() (submits, writes, syncs int64) {
	return f.submits.Load(), f.writes.Load(), f.syncs.Load()
}

// Do runs ops in order; an op linked after a failed one gets ErrCanceled.
func (f *Fake) Do(ops []Op) {
	f.submits.Add(1)
	if f.BeforeDo != nil {
		f.BeforeDo(ops)
	}
	broken := false // the current link chain has failed
	for i := range ops {
		op := &ops[i]
		op.N, op.Err = 0, nil
		if broken {
			op.Err = ErrCanceled
		} else {
			f.run(op)
		}
		if op.Err != nil {
			broken = true
		}
		if !op.Link {
			broken = false
		}
	}
}

func (f *Fake) run(op *Op) {
	var fault Fault
	if f.Inject != nil {
		fault = f.Inject(op)
	}
	switch op.Kind {
	case OpWrite:
		f.writes.Add(1)
		limit := op.Len()
		if fault.Err != nil {
			limit = min(fault.Written, limit)
		}
		off := op.Off
		for _, b := range op.Bufs {
			if int64(len(b)) > limit-op.N {
				b = b[:limit-op.N]
			}
			n, err := op.File.WriteAt(b, off)
			op.N += int64(n)
			off += int64(n)
			if err != nil {
				op.Err = err
				return
			}
		}
		op.Err = fault.Err
	case OpSync:
		f.syncs.Add(1)
		if fault.Err != nil {
			op.Err = fault.Err
			return
		}
		op.Err = op.File.Sync()
	}
}
