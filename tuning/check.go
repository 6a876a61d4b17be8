package tuning

import (
	"fmt"
	"strings"
)

// Status is the verdict of one check.
type Status string

const (
	StatusOK         Status = "ok"
	StatusWarn       Status = "warn"        // worth changing for a broker
	StatusInfo       Status = "info"        // fact or judgement call; nothing to fix automatically
	StatusNotVisible Status = "not-visible" // hidden here (container, VM, old kernel)
)

// Check is one finding: what the host has, what sluice wants and why.
// Checks are plain values; copy them freely.
type Check struct {
	Name        string  `json:"name"`
	Current     string  `json:"current"`
	Recommended string  `json:"recommended"`
	Status      Status  `json:"status"`
	Why         string  `json:"why"`
	Action      *Action `json:"action,omitempty"` // set only when --apply can change and revert it
}

// Write is one file write of an Action: Path is the absolute host path
// (/proc/sys/..., /sys/...), Old the value to write back to revert.
type Write struct {
	Path  string `json:"path"`
	Value string `json:"value"`
	Old   string `json:"old"`
}

// Action is a revertible change: a set of sysctl/sysfs writes. Apply and
// Revert are the equivalent shell commands an operator can run by hand.
type Action struct {
	Writes []Write  `json:"writes"`
	Apply  []string `json:"apply"`
	Revert []string `json:"revert"`
}

// newAction builds an Action and its shell commands. glob, when not empty,
// is a shell glob that matches every path of writes sharing one Old value,
// so a per-CPU change reverts with one loop instead of hundreds of lines.
func newAction(glob string, writes ...Write) *Action {
	a := &Action{Writes: writes}
	sameOld := true
	for _, w := range writes {
		sameOld = sameOld && w.Old == writes[0].Old && w.Value == writes[0].Value
	}
	if glob != "" && len(writes) > 1 && sameOld {
		a.Apply = []string{loopCmd(glob, writes[0].Value)}
		a.Revert = []string{loopCmd(glob, writes[0].Old)}
		return a
	}
	for _, w := range writes {
		a.Apply = append(a.Apply, writeCmd(w.Path, w.Value))
		a.Revert = append(a.Revert, writeCmd(w.Path, w.Old))
	}
	return a
}

// writeCmd renders the command that writes value to path: sysctl -w for
// /proc/sys (what operators know and grep for), echo for sysfs.
func writeCmd(path, value string) string {
	value = strings.Join(strings.Fields(value), " ")
	if key, ok := strings.CutPrefix(path, "/proc/sys/"); ok {
		key = strings.ReplaceAll(key, "/", ".")
		if strings.Contains(value, " ") {
			return fmt.Sprintf("sysctl -w %s=%q", key, value)
		}
		return fmt.Sprintf("sysctl -w %s=%s", key, value)
	}
	if strings.Contains(value, " ") {
		value = fmt.Sprintf("%q", value)
	}
	return fmt.Sprintf("echo %s > %s", value, path)
}

func loopCmd(glob, value string) string {
	return fmt.Sprintf("for f in %s; do echo %s > $f; done", glob, value)
}

// sysctlPath turns "vm.swappiness" into "/proc/sys/vm/swappiness".
func sysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// notVisible is the Check for a probe whose source this host hides.
func notVisible(name, recommended, why string) Check {
	return Check{Name: name, Current: "not visible here", Recommended: recommended,
		Status: StatusNotVisible, Why: why}
}
