package tuning

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// PinCurrentThread locks the calling goroutine to its OS thread and
// restricts that thread to cpus (sched_setaffinity).
//
// Concurrency contract: it affects only the calling goroutine and its
// thread. The caller must stay on that goroutine for as long as the pinning
// should hold (an event loop calls it first thing and then runs its loop);
// other goroutines are unaffected and keep running anywhere. If that
// goroutine returns without runtime.UnlockOSThread, the Go runtime destroys
// the pinned thread instead of reusing it, which is what a shard's loop
// wants at shutdown. On error the lock taken here is released again, so a
// failed pin leaves the goroutine as it was.
func PinCurrentThread(cpus []int) error {
	set, err := cpuSet(cpus)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	// pid 0 = the calling thread (sched_setaffinity is per thread on Linux).
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("tuning: sched_setaffinity(%s): %w", FormatCPUList(cpus), err)
	}
	return nil
}
