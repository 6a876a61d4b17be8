package perf

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	f := func(text string, want int64, wantErr bool) {
		t.Helper()
		got, err := parseProcStat([]byte(text))
		if (err != nil) != wantErr {
			t.Fatalf("parseProcStat(%q) error = %v, want error %v", text, err, wantErr)
		}
		if got != want {
			t.Fatalf("parseProcStat(%q) = %d, want %d", text, got, want)
		}
	}
	// Real layout: pid (comm) state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime ...
	f("4242 (kfake-server) S 1 4242 4242 0 -1 4194560 1536 0 0 0 250 75 3 4 20 0 9 0 123 0 0", 325, false)
	// comm may contain spaces and parentheses; only the last ')' ends it.
	f("7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 11 22 0 0 20 0 1 0 5 0 0", 33, false)
	f("7 (x) R 1 7 7", 0, true)                           // truncated
	f("no parens here", 0, true)                          // not a stat line
	f("7 (x) R 1 7 7 0 -1 0 0 0 0 0 abc 22 0 0", 0, true) // garbage utime
}

func TestClockTickMatchesGetconf(t *testing.T) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		t.Skipf("getconf unavailable: %v", err)
	}
	want, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("getconf CLK_TCK printed %q", out)
	}
	if got := ClockTick(); got != want {
		t.Fatalf("ClockTick() = %d, getconf CLK_TCK = %d", got, want)
	}
}

func TestProcCPUSeesWork(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn 150 ms of CPU, measured by getrusage rather than wall time so
	// a loaded machine cannot starve the loop; /proc counts in ticks.
	x := 0
	for start := selfCPU(); selfCPU()-start < 150*time.Millisecond; {
		for range 100000 {
			x++
		}
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 100*time.Millisecond {
		t.Fatalf("procCPU grew by %v after 150 ms of CPU (x=%d)", d, x)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Fatal("procCPU of a pid that cannot exist succeeded")
	}
}

func TestPerGB(t *testing.T) {
	u := perGB(3*time.Second, 2e9)
	if u.Seconds != 3 || u.SecondsPerGB != 1.5 {
		t.Fatalf("perGB(3s, 2 GB) = %+v, want 3 s and 1.5 s/GB", u)
	}
	if u := perGB(time.Second, 0); u.SecondsPerGB != 0 {
		t.Fatalf("perGB with no bytes = %+v, want 0 s/GB", u)
	}
}
