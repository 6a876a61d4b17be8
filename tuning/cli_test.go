package tuning

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func runFake(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := run(&out, args, fakeHost)
	return out.String(), code
}

func TestRunText(t *testing.T) {
	root := makeTree(t, bareMetal())
	out, code := runFake(t, "--root", root, "--data-dir", "/data/sluice")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"sluice tune: host checks (data dir /data/sluice, root " + root + ")",
		"STATUS",
		"warn*        vm.swappiness",
		"why: Swapping out broker heap",
		"warn         open files (RLIMIT_NOFILE)", // advice only: no *
		"Pinning plan (numa.pinning=auto, 15 shards, data disk on node1, NIC on node1):\n  node1: shards 0-6",
		"* = `sluice tune --apply`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if before := readTree(t, root, "/proc/sys/vm/swappiness"); before != "60" {
		t.Errorf("read-only run changed swappiness to %q", before)
	}
}

func TestRunJSON(t *testing.T) {
	root := makeTree(t, bareMetal())
	out, code := runFake(t, "--root", root, "--data-dir", "/data/x", "--json", "--shards", "4")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.DataDir != "/data/x" || r.Plan == nil || len(r.Plan.Shards) != 4 || r.Plan.Shards[3].CPUs[0] != 11 {
		t.Errorf("report: dir %q plan %+v", r.DataDir, r.Plan)
	}
	c := findCheck(t, r.Checks, "vm.swappiness")
	if c.Status != StatusWarn || c.Action == nil || c.Action.Writes[0] != (Write{Path: "/proc/sys/vm/swappiness", Value: "1", Old: "60"}) {
		t.Errorf("swappiness: %+v", c)
	}
	if len(r.Applied) != 0 {
		t.Errorf("applied without --apply: %+v", r.Applied)
	}
}

func TestRunApplyAndRevert(t *testing.T) {
	orig := bareMetal()
	root := makeTree(t, orig)
	out, code := runFake(t, "--root", root, "--data-dir", "/data/sluice", "--apply")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	changed := map[string]string{
		"/proc/sys/vm/swappiness":                                          "1",
		"/proc/sys/net/core/somaxconn":                                     "4096",
		"/proc/sys/net/core/netdev_max_backlog":                            "5000",
		"/proc/sys/net/ipv4/tcp_rmem":                                      "4096 131072 16777216",
		"/sys/kernel/mm/transparent_hugepage/enabled":                      "madvise",
		"/sys/devices/system/clocksource/clocksource0/current_clocksource": "tsc",
		"/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor":            "performance",
		"/sys/block/nvme0n1/queue/scheduler":                               "none",
		"/sys/block/nvme0n1/queue/read_ahead_kb":                           "1024",
		"/sys/class/net/eth0/queues/rx-0/rps_cpus":                         "ef00",
		// untouched: ok or advice-only
		"/proc/sys/vm/dirty_ratio":                              "20",
		"/proc/sys/net/ipv4/tcp_wmem":                           "4096\t16384\t33554432",
		"/sys/block/nvme0n1/queue/nomerges":                     "0",
		"/sys/devices/system/cpu/cpu9/cpufreq/scaling_governor": "performance",
		"/proc/irq/40/smp_affinity_list":                        "0",
	}
	for p, want := range changed {
		if got := readTree(t, root, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	_, reverts, ok := strings.Cut(out, "To revert, run:\n")
	if !ok {
		t.Fatalf("no revert section:\n%s", out)
	}
	reverts, _, _ = strings.Cut(reverts, "Re-checked:")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(reverts), "\n") {
		got = append(got, strings.TrimSpace(l))
	}
	want := []string{
		"echo powersave > /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
		"echo powersave > /sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
		"echo powersave > /sys/devices/system/cpu/cpu2/cpufreq/scaling_governor",
		"echo powersave > /sys/devices/system/cpu/cpu3/cpufreq/scaling_governor",
		"echo powersave > /sys/devices/system/cpu/cpu4/cpufreq/scaling_governor",
		"echo powersave > /sys/devices/system/cpu/cpu5/cpufreq/scaling_governor",
		"echo powersave > /sys/devices/system/cpu/cpu6/cpufreq/scaling_governor",
		"echo powersave > /sys/devices/system/cpu/cpu7/cpufreq/scaling_governor",
		"echo always > /sys/kernel/mm/transparent_hugepage/enabled",
		"echo hpet > /sys/devices/system/clocksource/clocksource0/current_clocksource",
		"sysctl -w vm.swappiness=60",
		"sysctl -w net.core.somaxconn=128",
		`sysctl -w net.ipv4.tcp_rmem="4096 131072 6291456"`,
		"sysctl -w net.core.netdev_max_backlog=1000",
		"echo bfq > /sys/block/nvme0n1/queue/scheduler",
		"echo 64 > /sys/block/nvme0n1/queue/read_ahead_kb",
		"echo 00000000,00000000 > /sys/class/net/eth0/queues/rx-0/rps_cpus",
	}
	if !slices.Equal(got, want) {
		t.Errorf("revert commands:\n got %q\nwant %q", got, want)
	}
	if !strings.Contains(out, "ok   vm.swappiness = 1") || !strings.Contains(out, "ok   nvme0n1 scheduler = none") {
		t.Errorf("re-check section missing:\n%s", out)
	}

	// Running the reverts (as the writes they stand for) restores the tree.
	h := fakeHost(root)
	for _, line := range want {
		path, value := parseRevert(t, line)
		if err := h.write(path, value); err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range orig {
		if strings.HasPrefix(content, "->") || strings.HasSuffix(p, "/") {
			continue
		}
		if strings.Contains(content, "[") {
			// A choice file: the kernel re-renders the list, a fake tree
			// keeps the written word; the selection is what must return.
			content, _ = bracketed(content)
		}
		got := readTree(t, root, p)
		if strings.Contains(got, "[") {
			got, _ = bracketed(got)
		}
		if strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(content), " ") {
			t.Errorf("after revert %s = %q, want %q", p, got, content)
		}
	}
}

// parseRevert turns "sysctl -w a.b=v" or "echo v > /path" back into a
// write, so the test checks the printed commands, not the internal list.
func parseRevert(t *testing.T, cmd string) (path, value string) {
	t.Helper()
	if kv, ok := strings.CutPrefix(cmd, "sysctl -w "); ok {
		k, v, _ := strings.Cut(kv, "=")
		return sysctlPath(k), strings.Trim(v, `"`)
	}
	if rest, ok := strings.CutPrefix(cmd, "echo "); ok {
		v, p, ok := strings.Cut(rest, " > ")
		if ok {
			return p, strings.Trim(v, `"`)
		}
	}
	t.Fatalf("unparseable revert %q", cmd)
	return "", ""
}

// A write that fails midway keeps the revert list to what was done.
func TestApplyPartialFailure(t *testing.T) {
	h := fakeHost(makeTree(t, files{"/sys/a": "x"}))
	act := newAction("", Write{Path: "/sys/a", Value: "y", Old: "x"}, Write{Path: "/sys/missing", Value: "y", Old: "x"})
	got := h.Apply([]Check{
		{Name: "two", Status: StatusWarn, Action: act},
		{Name: "info only", Status: StatusInfo, Action: act},
	})
	if len(got) != 1 || got[0].Error == "" || !slices.Equal(got[0].Revert, []string{"echo x > /sys/a"}) {
		t.Fatalf("applied = %+v", got)
	}
	if readTree(t, h.Root, "/sys/a") != "y" || h.exists("/sys/missing") {
		t.Error("write results wrong: missing files must not be created")
	}
}

func TestRunUsage(t *testing.T) {
	f := func(wantCode int, wantOut string, args ...string) {
		t.Helper()
		out, code := runFake(t, args...)
		if code != wantCode || !strings.Contains(out, wantOut) {
			t.Errorf("%q: exit %d, output:\n%s", args, code, out)
		}
		if strings.Contains(out, "--root") {
			t.Errorf("%q: usage shows the hidden --root flag", args)
		}
	}
	f(2, "flag provided but not defined", "--bogus")
	f(2, `unexpected argument "now"`, "now")
	f(2, "--data-dir", "-h")
}

// An empty root (a locked-down container) still produces a full table.
func TestRunEmptyRoot(t *testing.T) {
	var out bytes.Buffer
	code := run(&out, []string{"--root", t.TempDir()}, func(root string) *Host { return &Host{Root: root} })
	if code != 0 || !strings.Contains(out.String(), "not-visible  vm.swappiness") || strings.Contains(out.String(), "Pinning plan") {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
}
