package tuning

import (
	"slices"
	"strings"
	"testing"
)

func TestCollectBareMetal(t *testing.T) {
	h := fakeHost(makeTree(t, bareMetal()))
	r := h.Collect("/data/sluice", 0)

	f := func(name string, status Status, current string, apply, revert []string) {
		t.Helper()
		c := findCheck(t, r.Checks, name)
		if c.Status != status || c.Current != current {
			t.Errorf("%s: got %s %q, want %s %q", name, c.Status, c.Current, status, current)
		}
		if c.Why == "" || c.Recommended == "" {
			t.Errorf("%s: missing why/recommended: %+v", name, c)
		}
		var gotApply, gotRevert []string
		if c.Action != nil {
			gotApply, gotRevert = c.Action.Apply, c.Action.Revert
		}
		if !slices.Equal(gotApply, apply) || !slices.Equal(gotRevert, revert) {
			t.Errorf("%s: action\n got %q / %q\nwant %q / %q", name, gotApply, gotRevert, apply, revert)
		}
	}
	f("io_uring", StatusOK, "available (io_uring_disabled=0)", nil, nil)
	f("seccomp", StatusOK, "0 (disabled)", nil, nil)
	// Only CPUs 0-7 are powersave: the revert must name them one by one,
	// a glob loop would also "revert" CPUs 8-15 to powersave.
	var govApply, govRevert []string
	for _, c := range []string{"0", "1", "2", "3", "4", "5", "6", "7"} {
		p := "/sys/devices/system/cpu/cpu" + c + "/cpufreq/scaling_governor"
		govApply = append(govApply, "echo performance > "+p)
		govRevert = append(govRevert, "echo powersave > "+p)
	}
	f("cpu governor", StatusWarn, "performance x8, powersave x8", govApply, govRevert)
	f("transparent hugepages", StatusWarn, "always",
		[]string{"echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"},
		[]string{"echo always > /sys/kernel/mm/transparent_hugepage/enabled"})
	f("clocksource", StatusWarn, "hpet",
		[]string{"echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource"},
		[]string{"echo hpet > /sys/devices/system/clocksource/clocksource0/current_clocksource"})
	f("vm.swappiness", StatusWarn, "60", []string{"sysctl -w vm.swappiness=1"}, []string{"sysctl -w vm.swappiness=60"})
	f("vm.dirty_background_ratio", StatusOK, "10", nil, nil)
	f("vm.dirty_ratio", StatusOK, "20", nil, nil)
	f("net.core.somaxconn", StatusWarn, "128", []string{"sysctl -w net.core.somaxconn=4096"}, []string{"sysctl -w net.core.somaxconn=128"})
	f("net.ipv4.tcp_rmem", StatusWarn, "4096 131072 6291456",
		[]string{`sysctl -w net.ipv4.tcp_rmem="4096 131072 16777216"`},
		[]string{`sysctl -w net.ipv4.tcp_rmem="4096 131072 6291456"`})
	f("net.ipv4.tcp_wmem", StatusOK, "4096 16384 33554432", nil, nil)
	f("open files (RLIMIT_NOFILE)", StatusWarn, "soft 1024, hard 524288", nil, nil)
	f("NUMA layout", StatusInfo, "node0: 0-7; node1: 8-11,13-15; offline: 12", nil, nil)
	f("data filesystem", StatusOK, "xfs on /dev/nvme0n1p1 (mount /data, data dir /data/sluice)", nil, nil)
	f("data mount atime", StatusOK, "noatime", nil, nil)
	f("nvme0n1 scheduler", StatusWarn, "bfq",
		[]string{"echo none > /sys/block/nvme0n1/queue/scheduler"},
		[]string{"echo bfq > /sys/block/nvme0n1/queue/scheduler"})
	f("nvme0n1 nomerges", StatusInfo, "0", nil, nil)
	f("nvme0n1 write cache", StatusInfo, "write back", nil, nil)
	f("nvme0n1 read_ahead_kb", StatusWarn, "64",
		[]string{"echo 1024 > /sys/block/nvme0n1/queue/read_ahead_kb"},
		[]string{"echo 64 > /sys/block/nvme0n1/queue/read_ahead_kb"})
	f("nvme0n1 NUMA node", StatusInfo, "node1", nil, nil)
	f("eth0 NUMA node", StatusInfo, "node1", nil, nil)
	f("eth0 IRQ affinity", StatusWarn, "2 IRQs (40-41) on CPUs 0; 2 on a remote node", nil, nil)
	f("eth0 RPS", StatusWarn, "1 rx queue(s), rx-0=00000000,00000000",
		[]string{"echo ef00 > /sys/class/net/eth0/queues/rx-0/rps_cpus"},
		[]string{"echo 00000000,00000000 > /sys/class/net/eth0/queues/rx-0/rps_cpus"})
	for _, c := range r.Checks {
		if strings.HasPrefix(c.Name, "lo ") {
			t.Errorf("loopback has no device and must not be checked: %+v", c)
		}
	}

	if r.Plan == nil || r.Plan.DiskNode != 1 || r.Plan.NICNode != 1 || len(r.Plan.Shards) != 15 {
		t.Fatalf("plan = %+v", r.Plan)
	}
	if got := r.Plan.Summary(); got != "node1: shards 0-6 on CPUs 8-11,13-15; node0: shards 7-14 on CPUs 0-7" {
		t.Errorf("plan summary %q", got)
	}
}

// An empty root is the worst container: nothing visible, nothing fails.
func TestCollectEmptyTree(t *testing.T) {
	h := &Host{Root: t.TempDir()}
	r := h.Collect("/var/lib/sluice", 0)
	if len(r.Checks) < 10 {
		t.Fatalf("only %d checks", len(r.Checks))
	}
	for _, c := range r.Checks {
		if c.Status != StatusNotVisible || c.Current != "not visible here" || c.Action != nil {
			t.Errorf("%s: %s %q (action %v), want not-visible", c.Name, c.Status, c.Current, c.Action)
		}
	}
	if r.Plan != nil || r.Topology != nil {
		t.Errorf("plan/topology without /sys: %+v %+v", r.Plan, r.Topology)
	}
}

func TestIOURingProbe(t *testing.T) {
	f := func(fs files, probe func() error, status Status, current string) {
		t.Helper()
		h := &Host{Root: makeTree(t, fs), IOURing: probe}
		c := h.checkIOURing()
		if c.Status != status || c.Current != current {
			t.Errorf("got %s %q, want %s %q", c.Status, c.Current, status, current)
		}
	}
	ok := func() error { return nil }
	blocked := func() error { return errSeam }
	f(files{"/proc/sys/kernel/io_uring_disabled": "0"}, ok, StatusOK, "available (io_uring_disabled=0)")
	f(files{"/proc/sys/kernel/io_uring_disabled": "2"}, blocked, StatusWarn,
		"unavailable: io_uring_setup: operation not permitted (io_uring_disabled=2)")
	f(files{"/proc/sys/kernel/io_uring_disabled": "1"}, nil, StatusWarn,
		"restricted to kernel.io_uring_group (io_uring_disabled=1)")
	f(files{"/proc/": ""}, blocked, StatusWarn, "unavailable: io_uring_setup: operation not permitted")
	f(files{"/proc/": ""}, nil, StatusNotVisible, "not visible here")
	f(files{"/proc/self/status": "Seccomp:\t2"}, ok, StatusOK, "available")
}

func TestSeccompAndDirtyBytes(t *testing.T) {
	h := &Host{Root: makeTree(t, files{
		"/proc/self/status":                   "Name:\tx\nSeccomp:\t2",
		"/proc/sys/vm/dirty_ratio":            "20",
		"/proc/sys/vm/dirty_bytes":            "268435456",
		"/proc/sys/vm/dirty_background_ratio": "30",
	})}
	if c := h.checkSeccomp(); c.Status != StatusInfo || c.Current != "2 (filter)" {
		t.Errorf("seccomp: %+v", c)
	}
	checks := h.sysctlChecks()
	if c := findCheck(t, checks, "vm.dirty_ratio"); c.Status != StatusInfo || c.Current != "unused: vm.dirty_bytes=268435456" {
		t.Errorf("dirty_ratio with dirty_bytes: %+v", c)
	}
	if c := findCheck(t, checks, "vm.dirty_background_ratio"); c.Status != StatusWarn || c.Action == nil ||
		c.Action.Revert[0] != "sysctl -w vm.dirty_background_ratio=30" {
		t.Errorf("dirty_background_ratio: %+v", c)
	}
}

func TestGovernorGlobWhenAllChange(t *testing.T) {
	h := &Host{Root: makeTree(t, files{
		"/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "schedutil",
		"/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor": "schedutil",
	})}
	c := h.checkGovernor()
	want := "for f in /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor; do echo schedutil > $f; done"
	if c.Status != StatusWarn || c.Action == nil || len(c.Action.Revert) != 1 || c.Action.Revert[0] != want {
		t.Fatalf("governor: %+v %+v", c, c.Action)
	}
	if len(c.Action.Writes) != 2 {
		t.Errorf("writes %+v", c.Action.Writes)
	}
}
