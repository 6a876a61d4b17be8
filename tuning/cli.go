package tuning

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Run implements `sluice tune [--json] [--apply] [--data-dir DIR] [--shards N]`.
// It returns 0 on success (warnings included: they are advice), 1 when an
// --apply write failed, 2 on bad usage. Safe to call concurrently only
// without --apply.
func Run(w io.Writer, args []string) int {
	return run(w, args, NewHost)
}

// run is Run with the Host constructor as a seam, so tests can replace the
// rlimit and io_uring probes along with the root.
func run(w io.Writer, args []string, newHost func(root string) *Host) int {
	fs := flag.NewFlagSet("tune", flag.ContinueOnError)
	fs.SetOutput(w)
	root := fs.String("root", "/", "directory standing for / (testing)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	apply := fs.Bool("apply", false, "change the warn settings marked * (sysctl/sysfs only, revertible) and print how to revert")
	dataDir := fs.String("data-dir", "./sluice-data", "sluice data directory: selects the filesystem and disk to check")
	shards := fs.Int("shards", 0, "event loops to plan pinning for (0 = one per online CPU)")
	fs.Usage = func() {
		fmt.Fprintln(w, "usage: sluice tune [--json] [--apply] [--data-dir DIR] [--shards N]")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != "root" { // for tests against fake /proc and /sys trees
				fmt.Fprintf(w, "  --%s\t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
			}
		})
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(w, "sluice tune: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	h := newHost(*root)
	r := h.Collect(*dataDir, *shards)
	code := 0
	if *apply {
		r.Applied = h.Apply(r.Checks)
		after := h.Collect(*dataDir, *shards)
		for _, a := range r.Applied {
			if a.Error != "" {
				code = 1
			}
			for _, c := range after.Checks {
				if c.Name == a.Check {
					r.After = append(r.After, c)
				}
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return 1
		}
		return code
	}
	writeText(w, r, *apply)
	return code
}

// writeText prints the table: one row per check and its reason beneath.
func writeText(w io.Writer, r Report, applied bool) {
	fmt.Fprintf(w, "sluice tune: host checks (data dir %s", r.DataDir)
	if r.Root != "/" {
		fmt.Fprintf(w, ", root %s", r.Root)
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintln(w)
	rows := [][]string{{"STATUS", "CHECK", "CURRENT", "RECOMMENDED"}}
	for _, c := range r.Checks {
		st := string(c.Status)
		if c.Status == StatusWarn && c.Action != nil {
			st += "*"
		}
		rows = append(rows, []string{st, c.Name, c.Current, c.Recommended})
	}
	widths := columnWidths(rows, []int{12, 30, 44})
	widths[0] = max(widths[0], len(StatusNotVisible)) // same layout on every host
	for i, row := range rows {
		fmt.Fprintln(w, strings.TrimRight(padRow(row, widths), " "))
		if i > 0 {
			fmt.Fprintf(w, "%s  why: %s\n", strings.Repeat(" ", widths[0]), r.Checks[i-1].Why)
		}
	}
	fmt.Fprintln(w)
	if r.Plan != nil {
		p := r.Plan
		fmt.Fprintf(w, "Pinning plan (numa.pinning=auto, %d shards, data disk %s, NIC %s):\n  %s\n",
			len(p.Shards), nodeLabel(p.DiskNode), nodeLabel(p.NICNode), p.Summary())
	}
	if !applied {
		fmt.Fprintln(w, "* = `sluice tune --apply` can set this now and prints how to revert it (not persistent across reboot).")
		return
	}
	fmt.Fprintln(w, "Applied (runtime only; persist via /etc/sysctl.d or udev rules if you keep them):")
	var reverts []string
	for _, a := range r.Applied {
		for _, cmd := range a.Apply {
			fmt.Fprintf(w, "  %s\n", cmd)
		}
		if a.Error != "" {
			fmt.Fprintf(w, "  FAILED %s: %s\n", a.Check, a.Error)
		}
		reverts = append(reverts, a.Revert...)
	}
	if len(r.Applied) == 0 {
		fmt.Fprintln(w, "  nothing: no revertible warnings")
	}
	if len(reverts) > 0 {
		fmt.Fprintln(w, "To revert, run:")
		for _, cmd := range reverts {
			fmt.Fprintf(w, "  %s\n", cmd)
		}
	}
	if len(r.After) > 0 {
		fmt.Fprintln(w, "Re-checked:")
		for _, c := range r.After {
			fmt.Fprintf(w, "  %-4s %s = %s\n", c.Status, c.Name, c.Current)
		}
	}
}

func nodeLabel(n int) string {
	if n < 0 {
		return "node unknown"
	}
	return fmt.Sprintf("on node%d", n)
}

// columnWidths sizes each column to its widest cell, capped so one long
// value overflows its own row instead of pushing every row to the right.
func columnWidths(rows [][]string, caps []int) []int {
	widths := make([]int, len(caps))
	for _, row := range rows {
		for i := range caps {
			widths[i] = min(max(widths[i], len(row[i])), caps[i])
		}
	}
	return widths
}

func padRow(row []string, widths []int) string {
	var b strings.Builder
	for i, cell := range row {
		b.WriteString(cell)
		if i < len(widths) {
			b.WriteString(strings.Repeat(" ", max(widths[i]-len(cell), 0)+2))
		}
	}
	return b.String()
}
