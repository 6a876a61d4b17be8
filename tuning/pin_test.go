package tuning

import (
	"testing"

	"golang.org/x/sys/unix"
)

// pinAndRead pins a fresh goroutine's thread and reads the mask back from
// the kernel. The goroutine exits still locked, so the runtime discards
// the pinned thread instead of handing it to other tests.
func pinAndRead(cpus []int) (unix.CPUSet, error) {
	type result struct {
		set unix.CPUSet
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		if r.err = PinCurrentThread(cpus); r.err == nil {
			r.err = unix.SchedGetaffinity(0, &r.set)
		}
		ch <- r
	}()
	r := <-ch
	return r.set, r.err
}

func TestPinCurrentThreadReal(t *testing.T) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	if !allowed.IsSet(0) {
		t.Skip("CPU 0 is outside this process's cpuset")
	}
	set, err := pinAndRead([]int{0})
	if err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(0) {
		t.Errorf("after pinning to CPU 0 the kernel reports %d CPUs, cpu0=%v", set.Count(), set.IsSet(0))
	}
	if allowed.Count() >= 2 && allowed.IsSet(1) {
		set, err := pinAndRead([]int{0, 1})
		if err != nil || set.Count() != 2 || !set.IsSet(1) {
			t.Errorf("pin to 0-1: count %d err %v", set.Count(), err)
		}
	}
	// The test goroutine's own thread was never touched.
	var now unix.CPUSet
	if err := unix.SchedGetaffinity(0, &now); err != nil || now != allowed {
		t.Errorf("calling thread's mask changed: %v", err)
	}
}

func TestPinCurrentThreadErrors(t *testing.T) {
	for _, cpus := range [][]int{nil, {-1}, {1 << 20}, {1023}} {
		if _, err := pinAndRead(cpus); err == nil {
			t.Errorf("pin to %v: no error", cpus)
		}
	}
}
