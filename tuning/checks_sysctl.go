package tuning

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// sysctlChecks are the memory and network knobs, in table order.
func (h *Host) sysctlChecks() []Check {
	atLeast := func(n int64) func(int64) bool { return func(v int64) bool { return v >= n } }
	atMost := func(n int64) func(int64) bool { return func(v int64) bool { return v <= n } }
	out := []Check{
		h.sysctlInt(intRule{key: "vm.swappiness", good: atMost(10), want: 1, rec: "1",
			why: "Swapping out broker heap to keep more page cache makes GC and request handling page-fault; 1 keeps swap for emergencies only."}),
		h.dirtyCheck("vm.dirty_background_ratio", "vm.dirty_background_bytes", atMost(10), 5, "5 (<= 10)",
			"Background writeback should start early so fsync on the ack path finds little left to flush; a large threshold builds multi-GB writeback storms."),
		h.dirtyCheck("vm.dirty_ratio", "vm.dirty_bytes", atLeast(20), 40, ">= 20 (e.g. 40)",
			"Above this share of dirty memory the kernel blocks the writing thread itself; with log.flush.policy=os that thread is an event loop."),
		h.sysctlInt(intRule{key: "vm.dirty_expire_centisecs", good: atMost(3000), want: 3000, rec: "<= 3000 (30 s)",
			why: "With log.flush.policy=os this bounds how long acknowledged data lives only in RAM; longer means more loss on power failure."}),
		h.sysctlInt(intRule{key: "net.core.somaxconn", good: atLeast(4096), want: 4096, rec: ">= 4096",
			why: "Caps the listen backlog; client reconnect storms after a leader change overflow a small backlog and turn into SYN retries (1 s, 3 s, ...)."}),
		h.tcpMemCheck("net.ipv4.tcp_rmem",
			"The max bounds TCP receive autotuning; replication and produce over high-bandwidth or long links need >= 16 MiB windows."),
		h.tcpMemCheck("net.ipv4.tcp_wmem",
			"The max bounds TCP send autotuning; fetch responses to remote consumers and followers stall on a small send window."),
		h.sysctlInt(intRule{key: "net.core.netdev_max_backlog", good: atLeast(5000), want: 5000, rec: ">= 5000",
			why: "Per-CPU queue of received packets awaiting the stack; at 10 GbE+ bursts the default 1000 drops packets, which TCP sees as loss."}),
	}
	return out
}

// dirtyCheck handles the ratio/bytes pairs: a non-zero *_bytes silently
// overrides the ratio, so report that instead of judging a dead knob.
func (h *Host) dirtyCheck(ratioKey, bytesKey string, good func(int64) bool, want int64, rec, why string) Check {
	if b, ok := h.readInt(sysctlPath(bytesKey)); ok && b > 0 {
		return Check{Name: ratioKey, Current: fmt.Sprintf("unused: %s=%d", bytesKey, b), Recommended: rec,
			Status: StatusInfo, Why: why + " " + bytesKey + " is set and takes precedence over the ratio."}
	}
	return h.sysctlInt(intRule{key: ratioKey, good: good, want: want, rec: rec, why: why})
}

// tcpMemCheck judges the "min default max" triple by its max.
func (h *Host) tcpMemCheck(key, why string) Check {
	const wantMax = 16 << 20
	rec := fmt.Sprintf("max >= %d (16 MiB)", wantMax)
	p := sysctlPath(key)
	s, ok := h.read(p)
	if !ok {
		return notVisible(key, rec, why)
	}
	f := strings.Fields(s)
	if len(f) != 3 {
		return Check{Name: key, Current: s, Recommended: rec, Status: StatusInfo, Why: why + " (unexpected format)"}
	}
	cur := strings.Join(f, " ")
	c := Check{Name: key, Current: cur, Recommended: rec, Why: why, Status: StatusOK}
	if max, err := strconv.ParseInt(f[2], 10, 64); err == nil && max < wantMax {
		c.Status = StatusWarn
		c.Action = newAction("", Write{Path: p, Value: fmt.Sprintf("%s %s %d", f[0], f[1], wantMax), Old: cur})
	}
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
