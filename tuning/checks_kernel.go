package tuning

import (
	"fmt"
	"strconv"
	"strings"
)

// intRule describes a one-integer sysctl: good says whether the current
// value is fine, want is what --apply writes otherwise.
type intRule struct {
	key  string
	good func(int64) bool
	want int64
	rec  string
	why  string
}

func (h *Host) sysctlInt(r intRule) Check {
	p := sysctlPath(r.key)
	v, ok := h.readInt(p)
	if !ok {
		return notVisible(r.key, r.rec, r.why)
	}
	c := Check{Name: r.key, Current: strconv.FormatInt(v, 10), Recommended: r.rec, Why: r.why, Status: StatusOK}
	if !r.good(v) {
		c.Status = StatusWarn
		c.Action = newAction("", Write{Path: p, Value: strconv.FormatInt(r.want, 10), Old: c.Current})
	}
	return c
}

func (h *Host) checkIOURing() Check {
	const name = "io_uring"
	why := "sluice batches log writes and fsyncs of many partitions into one io_uring_enter; without it the ring falls back to pwritev+fdatasync (correct, more syscalls)."
	c := Check{Name: name, Recommended: "available (kernel.io_uring_disabled=0)", Why: why}
	sysctl, hasSysctl := h.readInt("/proc/sys/kernel/io_uring_disabled")
	var probe error
	probed := h.IOURing != nil
	if probed {
		probe = h.IOURing()
	}
	switch {
	case probed && probe != nil:
		c.Current = "unavailable: io_uring_setup: " + probe.Error()
		c.Status = StatusWarn
		if hasSysctl && sysctl != 0 {
			c.Current += fmt.Sprintf(" (io_uring_disabled=%d)", sysctl)
		}
		c.Why += " EPERM/ENOSYS usually means a seccomp profile (Docker's default blocks it) or the sysctl."
	case hasSysctl && sysctl == 2:
		c.Current, c.Status = "disabled (io_uring_disabled=2)", StatusWarn
	case hasSysctl && sysctl == 1:
		c.Current, c.Status = "restricted to kernel.io_uring_group (io_uring_disabled=1)", StatusWarn
		c.Why += " Run sluice as a member of that group or as root."
	case probed:
		c.Current, c.Status = "available", StatusOK
		if hasSysctl {
			c.Current += " (io_uring_disabled=0)"
		}
	case hasSysctl:
		c.Current, c.Status = "io_uring_disabled=0 (not probed on a fake root)", StatusOK
	default:
		return notVisible(name, c.Recommended, why)
	}
	// Not offered for --apply on purpose: enabling io_uring is a security
	// policy decision, not a tuning knob.
	return c
}

func (h *Host) checkSeccomp() Check {
	const name = "seccomp"
	why := "A seccomp filter (containers) can block io_uring, sched_setaffinity or sendfile; sluice then uses its fallbacks."
	s, ok := h.read("/proc/self/status")
	if !ok {
		return notVisible(name, "0 (no filter)", why)
	}
	for _, line := range strings.Split(s, "\n") {
		v, found := strings.CutPrefix(line, "Seccomp:")
		if !found {
			continue
		}
		v = strings.TrimSpace(v)
		mode := map[string]string{"0": "0 (disabled)", "1": "1 (strict)", "2": "2 (filter)"}[v]
		if mode == "" {
			mode = v
		}
		c := Check{Name: name, Current: mode, Recommended: "0 (no filter)", Why: why, Status: StatusOK}
		if v != "0" {
			c.Status = StatusInfo
		}
		return c
	}
	return notVisible(name, "0 (no filter)", why)
}

func (h *Host) checkGovernor() Check {
	const name = "cpu governor"
	why := "Power-saving governors lower the clock between bursts, adding latency to every produce after an idle moment; brokers want performance."
	var writes []Write
	counts := map[string]int{}
	total := 0
	for _, cpu := range h.list("/sys/devices/system/cpu", "cpu") {
		p := "/sys/devices/system/cpu/" + cpu + "/cpufreq/scaling_governor"
		g, ok := h.read(p)
		if !ok {
			continue
		}
		counts[g]++
		total++
		if g != "performance" {
			writes = append(writes, Write{Path: p, Value: "performance", Old: g})
		}
	}
	if len(counts) == 0 {
		return notVisible(name, "performance",
			why+" No cpufreq here: a VM or a hypervisor-managed clock.")
	}
	c := Check{Name: name, Current: describeCounts(counts), Recommended: "performance", Why: why, Status: StatusOK}
	if len(writes) > 0 {
		c.Status = StatusWarn
		glob := "" // a loop over every CPU would also "revert" the ones left alone
		if len(writes) == total {
			glob = "/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"
		}
		c.Action = newAction(glob, writes...)
	}
	return c
}

// describeCounts renders {"performance":2,"powersave":6} as
// "performance x2, powersave x6" (or just the value when uniform).
func describeCounts(m map[string]int) string {
	if len(m) == 1 {
		for k := range m {
			return k
		}
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s x%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func (h *Host) checkTHP() Check {
	const name = "transparent hugepages"
	const p = "/sys/kernel/mm/transparent_hugepage/enabled"
	why := "'always' lets khugepaged compact memory behind the broker's back, causing multi-ms stalls; the Go runtime and page cache do fine with madvise."
	s, ok := h.read(p)
	if !ok {
		return notVisible(name, "madvise", why)
	}
	sel, _ := bracketed(s)
	c := Check{Name: name, Current: sel, Recommended: "madvise (or never)", Why: why, Status: StatusOK}
	if sel == "always" {
		c.Status = StatusWarn
		c.Action = newAction("", Write{Path: p, Value: "madvise", Old: sel})
	}
	return c
}

func (h *Host) checkClocksource() Check {
	const name = "clocksource"
	const p = "/sys/devices/system/clocksource/clocksource0/current_clocksource"
	why := "Every request is timestamped; tsc (or kvm-clock in a VM) is read in the vDSO, while hpet/acpi_pm cost a real syscall each time."
	cur, ok := h.read(p)
	if !ok {
		return notVisible(name, "tsc", why)
	}
	avail, _ := h.read("/sys/devices/system/clocksource/clocksource0/available_clocksource")
	c := Check{Name: name, Current: cur, Recommended: "tsc", Why: why, Status: StatusOK}
	switch cur {
	case "tsc", "arch_sys_counter": // arch_sys_counter: arm64's equivalent
	case "kvm-clock", "hyperv_clocksource_tsc_page", "xen":
		c.Status = StatusInfo
		c.Why += " A paravirtual clock is the normal choice inside a VM."
	default:
		c.Status = StatusWarn
		for _, a := range strings.Fields(avail) {
			if a == "tsc" {
				c.Action = newAction("", Write{Path: p, Value: "tsc", Old: cur})
			}
		}
	}
	return c
}

func (h *Host) checkNoFile() Check {
	const name = "open files (RLIMIT_NOFILE)"
	const want = 1 << 20
	why := "Each partition keeps a .log, .index and .timeindex open per segment plus one fd per client connection; running out turns into KAFKA_STORAGE_ERROR."
	rec := "soft >= 1048576 (systemd LimitNOFILE=1048576)"
	if h.Rlimit == nil {
		return notVisible(name, rec, why)
	}
	soft, hard, err := h.Rlimit()
	if err != nil {
		return notVisible(name, rec, why)
	}
	c := Check{Name: name, Current: fmt.Sprintf("soft %d, hard %d", soft, hard), Recommended: rec, Why: why, Status: StatusOK}
	if soft < want {
		c.Status = StatusWarn
		if hard >= want {
			c.Why += " The hard limit allows it: raise the soft limit (ulimit -n) before starting sluice."
		}
	}
	// A process limit cannot be changed from outside the process; the
	// service manager owns it, so there is no Action.
	return c
}
