package tuning

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// mount is one line of /proc/mounts.
type mount struct {
	Device, Dir, FSType string
	Options             []string
}

func (h *Host) mounts() []mount {
	s, ok := h.read("/proc/mounts")
	if !ok {
		return nil
	}
	var out []mount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		out = append(out, mount{Device: unescapeMount(f[0]), Dir: unescapeMount(f[1]), FSType: f[2],
			Options: strings.Split(f[3], ",")})
	}
	return out
}

// unescapeMount undoes the kernel's octal escapes (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// findMount returns the mount holding path: the longest mount point that is
// a path prefix of it; among equal mount points the last one wins, because
// a later mount stacks over an earlier one.
func findMount(ms []mount, path string) (mount, bool) {
	best, found := mount{}, false
	for _, m := range ms {
		under := m.Dir == "/" || path == m.Dir || strings.HasPrefix(path, m.Dir+"/")
		if under && (!found || len(m.Dir) >= len(best.Dir)) {
			best, found = m, true
		}
	}
	return best, found
}

// resolveDataDir makes dir absolute and, on the real root, follows symlinks
// of its nearest existing ancestor (the data dir itself may not exist yet).
func (h *Host) resolveDataDir(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return filepath.Clean(dir)
	}
	if h.Root != "/" {
		return abs
	}
	rest := ""
	for p := abs; ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		if p == "/" {
			return abs
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// diskOf maps a mount source such as /dev/nvme0n1p2 or /dev/mapper/vg-data
// to the whole disk in /sys/block whose queue settings apply. via names the
// partition or device-mapper layer in between, for the report.
func (h *Host) diskOf(dev string) (disk, via string, ok bool) {
	if !strings.HasPrefix(dev, "/dev/") {
		return "", "", false
	}
	name := filepath.Base(dev)
	if real, err := filepath.EvalSymlinks(h.path(dev)); err == nil {
		name = filepath.Base(real) // /dev/mapper/x -> dm-0, /dev/disk/by-* -> sdX
	}
	for range 4 { // dm over partition over disk, at most a few layers
		if h.exists("/sys/block/" + name + "/queue") {
			slaves := h.list("/sys/block/"+name+"/slaves", "")
			if len(slaves) == 0 {
				return name, via, true
			}
			via, name = joinVia(via, name), slaves[0]
			continue
		}
		parent := ""
		for _, d := range h.list("/sys/block", "") {
			if h.exists("/sys/block/" + d + "/" + name + "/partition") {
				parent = d
			}
		}
		if parent == "" {
			return "", "", false
		}
		via, name = joinVia(via, name), parent
	}
	return "", "", false
}

func joinVia(via, name string) string {
	if via == "" {
		return name
	}
	return via + " > " + name
}

// diskChecks reports the filesystem under dataDir and the queue settings of
// the disk beneath it.
func (h *Host) diskChecks(dataDir string) []Check {
	path := h.resolveDataDir(dataDir)
	const fsWhy = "XFS and ext4 are what Kafka and Redpanda are run and tested on; sluice's fsync-per-ack and segment preallocation assume their semantics."
	m, ok := findMount(h.mounts(), path)
	if !ok {
		return []Check{notVisible("data filesystem", "xfs or ext4", fsWhy+" /proc/mounts is not readable.")}
	}
	where := fmt.Sprintf("%s on %s (mount %s, data dir %s)", m.FSType, m.Device, m.Dir, path)
	fs := Check{Name: "data filesystem", Current: where, Recommended: "xfs or ext4", Why: fsWhy, Status: StatusOK}
	if m.FSType != "xfs" && m.FSType != "ext4" {
		fs.Status = StatusWarn
	}
	atime := Check{Name: "data mount atime", Current: "atime updates (" + atimeMode(m.Options) + ")",
		Recommended: "noatime (mount -o remount,noatime " + m.Dir + ")", Status: StatusWarn,
		Why: "Reads of a segment just written still update its atime under relatime, adding metadata writes to the journal for no benefit."}
	if slices.Contains(m.Options, "noatime") {
		atime.Current, atime.Status = "noatime", StatusOK
	}
	out := []Check{fs, atime}
	if slices.Contains(m.Options, "discard") {
		out = append(out, Check{Name: "data mount discard", Current: "discard", Recommended: "nodiscard + fstrim.timer",
			Status: StatusInfo, Why: "Online discard issues TRIM inline when segments are deleted by retention, which can stall writes on some SSDs; a weekly fstrim does the same work off the hot path."})
	}
	disk, via, ok := h.diskOf(m.Device)
	if !ok {
		return append(out, notVisible("data disk", "a local block device",
			"The data dir is not on a block device visible here ("+m.Device+"; overlay/tmpfs in a container?), so queue settings and NUMA placement cannot be checked."))
	}
	return append(out, h.queueChecks(disk, via)...)
}

func atimeMode(opts []string) string {
	for _, o := range opts {
		if o == "relatime" || o == "strictatime" || o == "lazytime" {
			return o
		}
	}
	return "default"
}

// queueChecks covers /sys/block/<disk>/queue and the disk's NUMA node.
func (h *Host) queueChecks(disk, via string) []Check {
	q := "/sys/block/" + disk + "/queue/"
	label := disk
	if via != "" {
		label = disk + " (via " + via + ")"
	}
	rot, rotOK := h.readInt(q + "rotational")
	ssd := rotOK && rot == 0
	kind := "rotational=1; VM disks often say so"
	if ssd {
		kind = "rotational=0"
	}
	var out []Check

	schedWhy := "Appends are already large and sequential; SSD/NVMe need no reordering ('none' saves CPU per I/O), spinning disks need mq-deadline to bound latency."
	if s, ok := h.read(q + "scheduler"); ok {
		cur, avail := bracketed(s)
		rec := "mq-deadline"
		if ssd {
			rec = "none"
		}
		c := Check{Name: disk + " scheduler", Current: cur, Recommended: rec + " (" + kind + ")", Why: schedWhy, Status: StatusOK}
		switch {
		case cur == rec:
		case ssd && cur == "mq-deadline", cur == "none" && len(avail) == 1:
			c.Status = StatusInfo
		default:
			c.Status = StatusWarn
			if slices.Contains(avail, rec) {
				c.Action = newAction("", Write{Path: q + "scheduler", Value: rec, Old: cur})
			}
		}
		out = append(out, c)
	} else {
		out = append(out, notVisible(disk+" scheduler", "none (SSD) / mq-deadline (HDD)", schedWhy))
	}

	mergeWhy := "Merging adjacent requests costs CPU per I/O; sluice's ring already coalesces writes, so on SSD/NVMe disable it (2, as rpk does), on HDD keep it (0)."
	if v, ok := h.readInt(q + "nomerges"); ok {
		want := int64(0)
		if ssd {
			want = 2
		}
		c := Check{Name: disk + " nomerges", Current: strconv.FormatInt(v, 10), Recommended: strconv.FormatInt(want, 10), Why: mergeWhy, Status: StatusOK}
		if v != want {
			c.Status = StatusInfo
		}
		out = append(out, c)
	} else {
		out = append(out, notVisible(disk+" nomerges", "2 (SSD) / 0 (HDD)", mergeWhy))
	}

	cacheWhy := "'write back' means fdatasync sends a cache FLUSH, which is what makes acks durable; switch to 'write through' only for power-loss-protected devices that advertise a cache they do not have."
	if s, ok := h.read(q + "write_cache"); ok {
		out = append(out, Check{Name: disk + " write cache", Current: s, Recommended: "as the device reports", Why: cacheWhy, Status: StatusInfo})
	} else {
		out = append(out, notVisible(disk+" write cache", "as the device reports", cacheWhy))
	}

	raWhy := "Catch-up consumers read segments sequentially and want readahead; very large values evict the hot log tail from page cache when indexes are read randomly."
	if v, ok := h.readInt(q + "read_ahead_kb"); ok {
		c := Check{Name: disk + " read_ahead_kb", Current: strconv.FormatInt(v, 10), Recommended: "128..4096", Why: raWhy, Status: StatusOK}
		switch {
		case v < 128:
			c.Status = StatusWarn
			c.Action = newAction("", Write{Path: q + "read_ahead_kb", Value: "1024", Old: c.Current})
		case v > 4096:
			c.Status = StatusInfo
		}
		out = append(out, c)
	} else {
		out = append(out, notVisible(disk+" read_ahead_kb", "128..4096", raWhy))
	}

	numaWhy := "The shard that owns a partition should run on the node the disk's controller hangs off, so DMA and page cache stay node-local."
	if n, ok := h.numaNodeOf("/sys/block/" + disk + "/device"); ok {
		out = append(out, Check{Name: disk + " NUMA node", Current: numaName(n), Recommended: "shards for its partitions on that node", Why: numaWhy, Status: StatusInfo})
	} else {
		out = append(out, notVisible(label+" NUMA node", "shards for its partitions on that node", numaWhy))
	}
	return out
}

func numaName(n int) string {
	if n < 0 {
		return "-1 (unknown: no NUMA affinity reported)"
	}
	return "node" + strconv.Itoa(n)
}
