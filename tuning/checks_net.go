package tuning

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// nics lists the interfaces backed by a device (physical or virtio); lo,
// bridges, veths and ifbs have no "device" link and no IRQs of their own.
func (h *Host) nics() []string {
	var out []string
	for _, n := range h.list("/sys/class/net", "") {
		if h.exists("/sys/class/net/" + n + "/device") {
			out = append(out, n)
		}
	}
	return out
}

// nicChecks reports NUMA node, IRQ affinity and RPS for every NIC.
func (h *Host) nicChecks(t Topology) []Check {
	nics := h.nics()
	if len(nics) == 0 {
		return []Check{notVisible("network interfaces", "a NIC with its own device",
			"No device-backed interface is visible (container network namespace?), so IRQ and RPS placement cannot be checked.")}
	}
	var out []Check
	for _, nic := range nics {
		dev := "/sys/class/net/" + nic + "/device"
		node, known := h.numaNodeOf(dev)
		numaWhy := "Network shards and the partitions they serve do best on the node the NIC hangs off; cross-node DMA costs bandwidth and latency."
		if known {
			out = append(out, Check{Name: nic + " NUMA node", Current: numaName(node), Recommended: "shards on that node", Why: numaWhy, Status: StatusInfo})
		} else {
			out = append(out, notVisible(nic+" NUMA node", "shards on that node", numaWhy))
			node = -1
		}
		out = append(out, h.irqCheck(nic, dev, node, t), h.rpsCheck(nic, node, t))
	}
	return out
}

// interrupts parses /proc/interrupts into IRQ number -> action names.
func (h *Host) interrupts() map[int]string {
	s, ok := h.read("/proc/interrupts")
	if !ok {
		return nil
	}
	out := map[int]string{}
	for _, line := range strings.Split(s, "\n") {
		num, rest, found := strings.Cut(strings.TrimSpace(line), ":")
		irq, err := strconv.Atoi(num)
		if !found || err != nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) > 0 {
			out[irq] = f[len(f)-1]
		}
	}
	return out
}

func (h *Host) irqCheck(nic, dev string, node int, t Topology) Check {
	name := nic + " IRQ affinity"
	why := "Packet interrupts should be spread over several CPUs of the NIC's node; all on one CPU makes that CPU the ceiling for the whole broker's network."
	rec := "spread over CPUs of the NIC's node (irqbalance or manual smp_affinity)"
	names := h.interrupts()
	irqs := h.irqsOf(dev)
	if len(irqs) == 0 { // drivers without msi_irqs: match names like eth0-TxRx-0
		for irq, n := range names {
			if strings.HasPrefix(n, nic) {
				irqs = append(irqs, irq)
			}
		}
		slices.Sort(irqs)
	}
	var used, cpus []int
	remote := 0
	for _, irq := range irqs {
		if strings.HasSuffix(names[irq], "-config") { // virtio control vector, no traffic
			continue
		}
		s, ok := h.read(fmt.Sprintf("/proc/irq/%d/effective_affinity_list", irq))
		if !ok {
			s, ok = h.read(fmt.Sprintf("/proc/irq/%d/smp_affinity_list", irq))
		}
		aff, err := ParseCPUList(s)
		if !ok || err != nil || len(aff) == 0 {
			continue
		}
		used = append(used, irq)
		cpus = append(cpus, aff...)
		if node >= 0 && t.HasNode(node) && !anyOnNode(t, aff, node) {
			remote++
		}
	}
	if len(used) == 0 {
		return notVisible(name, rec, why)
	}
	cpuList, _ := ParseCPUList(FormatCPUList(cpus))
	c := Check{Name: name, Current: fmt.Sprintf("%d IRQs (%s) on CPUs %s", len(used), FormatCPUList(used), FormatCPUList(cpuList)),
		Recommended: rec, Why: why, Status: StatusOK}
	switch {
	case remote > 0:
		c.Status = StatusWarn
		c.Current += fmt.Sprintf("; %d on a remote node", remote)
	case len(used) > 1 && len(cpuList) == 1 && len(t.OnlineCPUs()) > 1:
		c.Status = StatusWarn
	}
	// No Action: irqbalance, if running, would silently undo a manual
	// affinity, so this stays advice.
	return c
}

func anyOnNode(t Topology, cpus []int, node int) bool {
	for _, c := range cpus {
		if t.NodeOf(c) == node {
			return true
		}
	}
	return false
}

func (h *Host) rpsCheck(nic string, node int, t Topology) Check {
	name := nic + " RPS"
	why := "With fewer hardware RX queues than CPUs, Receive Packet Steering spreads protocol processing over more CPUs instead of the one taking the interrupt."
	base := "/sys/class/net/" + nic + "/queues/"
	queues := h.list(base, "rx-")
	target := t.OnlineCPUs()
	if node >= 0 && t.HasNode(node) {
		for _, n := range t.Nodes {
			if n.ID == node && len(n.CPUs) > 0 {
				target = n.CPUs
			}
		}
	}
	rec := "rps_cpus=" + formatCPUMask(target) + " on each rx queue"
	if len(queues) == 0 {
		return notVisible(name, rec, why)
	}
	if len(queues) >= len(t.OnlineCPUs()) {
		return Check{Name: name, Current: fmt.Sprintf("%d rx queues", len(queues)), Recommended: "off (enough hardware queues)",
			Why: why, Status: StatusOK}
	}
	var writes []Write
	var masks []string
	enabled := 0
	for _, q := range queues {
		p := base + q + "/rps_cpus"
		s, ok := h.read(p)
		if !ok {
			return notVisible(name, rec, why)
		}
		cpus, err := parseCPUMask(s)
		if err != nil {
			return notVisible(name, rec, why)
		}
		masks = append(masks, q+"="+s)
		if len(cpus) > 0 {
			enabled++
			continue
		}
		writes = append(writes, Write{Path: p, Value: formatCPUMask(target), Old: s})
	}
	c := Check{Name: name, Current: fmt.Sprintf("%d rx queue(s), %s", len(queues), strings.Join(masks, " ")),
		Recommended: rec, Why: why, Status: StatusOK}
	if enabled == 0 {
		c.Status = StatusWarn
		c.Action = newAction(base+"rx-*/rps_cpus", writes...)
	}
	return c
}
