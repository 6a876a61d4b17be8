package perf

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// CPUUsage is CPU time spent during a run and its cost per GB of payload.
// On a small machine the client often bounds throughput, so CPU seconds per
// GB is the figure that compares brokers fairly.
type CPUUsage struct {
	PID          int     `json:"pid,omitempty"`
	Seconds      float64 `json:"seconds"`
	SecondsPerGB float64 `json:"seconds_per_gb"`
	ClockTick    int64   `json:"clock_tick_hz,omitempty"`
}

// atClkTck is AT_CLKTCK from <linux/auxvec.h>: the kernel passes USER_HZ,
// the unit of /proc/<pid>/stat times, in every process's auxiliary vector.
// glibc's sysconf(_SC_CLK_TCK) (what `getconf CLK_TCK` prints) reads the same
// entry; x/sys has no sysconf, so we read the vector directly.
const atClkTck = 17

var clockTick = sync.OnceValue(func() int64 {
	if av, err := unix.Auxv(); err == nil {
		for _, kv := range av {
			if kv[0] == atClkTck && kv[1] > 0 {
				return int64(kv[1])
			}
		}
	}
	return 100 // USER_HZ on every Linux architecture; glibc's fallback too
})

// ClockTick returns USER_HZ, the tick rate of /proc/<pid>/stat CPU times.
// Safe for concurrent use.
func ClockTick() int64 { return clockTick() }

// parseProcStat returns utime+stime, in clock ticks, from the text of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may hold
// spaces or ')' itself, so fields are counted from the last ')'.
func parseProcStat(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no ')' in %q", b)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after comm, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat: bad utime/stime %q %q", f[11], f[12])
	}
	return ut + st, nil
}

// procCPU reads a process's cumulative CPU time.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	ticks, err := parseProcStat(b)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / time.Duration(ClockTick()), nil
}

// selfCPU is this process's user+system time; getrusage is exact to the
// microsecond, unlike the tick-rounded /proc figures.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter brackets a run: start it before the load, finish after. Not safe
// for concurrent use.
type cpuMeter struct {
	pid       int
	broker0   time.Duration
	brokerErr error
	self0     time.Duration
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, self0: selfCPU()}
	if pid > 0 {
		m.broker0, m.brokerErr = procCPU(pid)
	}
	return m
}

// finish returns broker usage (nil without a pid or if /proc was
// unreadable; the error says why) and client usage.
func (m *cpuMeter) finish(bytes int64) (broker, client *CPUUsage, err error) {
	client = perGB(selfCPU()-m.self0, bytes)
	client.PID = os.Getpid()
	if m.pid <= 0 {
		return nil, client, nil
	}
	if m.brokerErr != nil {
		return nil, client, fmt.Errorf("broker pid %d: %w", m.pid, m.brokerErr)
	}
	end, err := procCPU(m.pid)
	if err != nil {
		return nil, client, fmt.Errorf("broker pid %d: %w", m.pid, err)
	}
	broker = perGB(end-m.broker0, bytes)
	broker.PID, broker.ClockTick = m.pid, ClockTick()
	return broker, client, nil
}

func perGB(d time.Duration, bytes int64) *CPUUsage {
	u := &CPUUsage{Seconds: d.Seconds()}
	if bytes > 0 {
		u.SecondsPerGB = u.Seconds / (float64(bytes) / 1e9)
	}
	return u
}
