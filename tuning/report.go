package tuning

// Report is everything `sluice tune` found, as printed by --json.
type Report struct {
	Root     string    `json:"root"`
	DataDir  string    `json:"data_dir"`
	Topology *Topology `json:"topology,omitempty"`
	Plan     *Plan     `json:"plan,omitempty"`
	Checks   []Check   `json:"checks"`
	Applied  []Applied `json:"applied,omitempty"` // --apply only
	After    []Check   `json:"after,omitempty"`   // --apply only: the acted-on checks re-run
}

// Applied records what --apply did for one check: the commands that took
// effect, the commands that undo exactly those, and the first failure.
type Applied struct {
	Check  string   `json:"check"`
	Apply  []string `json:"apply"`
	Revert []string `json:"revert"`
	Error  string   `json:"error,omitempty"`
}

// Collect runs every check against h. shards is the planned event-loop
// count (0 = one per online CPU). It only reads. Safe to call concurrently.
func (h *Host) Collect(dataDir string, shards int) Report {
	r := Report{Root: h.Root, DataDir: h.resolveDataDir(dataDir)}
	r.Checks = append(r.Checks, h.checkIOURing(), h.checkSeccomp(), h.checkGovernor(), h.checkTHP(), h.checkClocksource())
	r.Checks = append(r.Checks, h.sysctlChecks()...)
	r.Checks = append(r.Checks, h.checkNoFile())

	const topoWhy = "sluice runs one event loop + ring per shard, pinned to a CPU on the node nearest its partitions' disk and the NIC (numa.pinning=auto)."
	topo, err := h.ReadTopology()
	if err != nil {
		r.Checks = append(r.Checks, notVisible("NUMA layout", "known", topoWhy+" "+err.Error()))
	} else {
		r.Topology = &topo
		c := Check{Name: "NUMA layout", Current: topo.String(), Recommended: "-", Why: topoWhy, Status: StatusInfo}
		if len(topo.Offline) > 0 {
			c.Why += " Offline CPUs get no shard."
		}
		r.Checks = append(r.Checks, c)
	}
	r.Checks = append(r.Checks, h.diskChecks(dataDir)...)
	if err == nil {
		r.Checks = append(r.Checks, h.nicChecks(topo)...)
		diskNode, nicNode := h.Placement(dataDir)
		if p, err := NewPlan(topo, shards, diskNode, nicNode); err == nil {
			r.Plan = &p
		}
	}
	return r
}

// Placement returns the NUMA nodes of the disk holding dataDir and of the
// first NIC that reports one (-1 when unknown): the inputs of NewPlan that
// the node needs at startup. Only reads; safe to call concurrently.
func (h *Host) Placement(dataDir string) (diskNode, nicNode int) {
	diskNode, nicNode = -1, -1
	if m, ok := findMount(h.mounts(), h.resolveDataDir(dataDir)); ok {
		if disk, _, ok := h.diskOf(m.Device); ok {
			if n, ok := h.numaNodeOf("/sys/block/" + disk + "/device"); ok {
				diskNode = n
			}
		}
	}
	for _, nic := range h.nics() {
		if n, ok := h.numaNodeOf("/sys/class/net/" + nic + "/device"); ok && n >= 0 {
			return diskNode, n
		}
	}
	return diskNode, nicNode
}

// Apply performs the Action of every warn check, in order, and reports per
// check what took effect. A failed write stops that check's remaining
// writes (so its revert list stays exact) but not other checks. Not safe to
// run concurrently with another Apply on the same host.
func (h *Host) Apply(checks []Check) []Applied {
	var out []Applied
	for _, c := range checks {
		if c.Status != StatusWarn || c.Action == nil {
			continue
		}
		a := Applied{Check: c.Name}
		var done []Write
		for _, w := range c.Action.Writes {
			if err := h.write(w.Path, w.Value); err != nil {
				a.Error = err.Error()
				break
			}
			done = append(done, w)
		}
		if len(done) == len(c.Action.Writes) {
			a.Apply, a.Revert = c.Action.Apply, c.Action.Revert
		} else if len(done) > 0 {
			partial := newAction("", done...)
			a.Apply, a.Revert = partial.Apply, partial.Revert
		}
		out = append(out, a)
	}
	return out
}
