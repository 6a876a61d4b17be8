package tuning

import (
	"testing"
)

func TestFindMount(t *testing.T) {
	ms := []mount{
		{Device: "/dev/sda1", Dir: "/"},
		{Device: "/dev/sdb", Dir: "/data"},
		{Device: "/dev/sdc", Dir: "/data2"},
		{Device: "tmpfs", Dir: "/data/tmp"},
		{Device: "/dev/sdd", Dir: "/data"}, // mounted over /dev/sdb
		{Device: "/dev/sde", Dir: "/mnt/my disk"},
	}
	f := func(path, wantDev string) {
		t.Helper()
		m, ok := findMount(ms, path)
		if !ok || m.Device != wantDev {
			t.Errorf("%s: got %q (%v), want %q", path, m.Device, ok, wantDev)
		}
	}
	f("/data/sluice", "/dev/sdd")
	f("/data", "/dev/sdd")
	f("/data2/sluice", "/dev/sdc") // /data is not a path prefix of /data2
	f("/data/tmp/x", "tmpfs")
	f("/var/lib/sluice", "/dev/sda1")
	f("/mnt/my disk/sluice", "/dev/sde")
	if _, ok := findMount(nil, "/x"); ok {
		t.Error("match without mounts")
	}
}

func TestMountsUnescape(t *testing.T) {
	h := &Host{Root: makeTree(t, files{"/proc/mounts": `/dev/sde /mnt/my\040disk ext4 rw,noatime 0 0
bad line`})}
	ms := h.mounts()
	if len(ms) != 1 || ms[0].Dir != "/mnt/my disk" || ms[0].FSType != "ext4" || ms[0].Options[1] != "noatime" {
		t.Fatalf("mounts = %+v", ms)
	}
}

func TestDiskOf(t *testing.T) {
	h := &Host{Root: makeTree(t, files{
		"/sys/block/sda/queue/rotational":        "1",
		"/sys/block/sda/sda2/partition":          "2",
		"/sys/block/nvme1n1/queue/rotational":    "0",
		"/sys/block/dm-0/queue/rotational":       "0",
		"/sys/block/dm-0/slaves/nvme1n1p3/":      "",
		"/sys/block/nvme1n1/nvme1n1p3/partition": "3",
		"/dev/dm-0":                              "",
		"/dev/mapper/vg-data":                    "->../dm-0",
	})}
	f := func(dev, wantDisk, wantVia string, wantOK bool) {
		t.Helper()
		disk, via, ok := h.diskOf(dev)
		if disk != wantDisk || via != wantVia || ok != wantOK {
			t.Errorf("%s: got %q %q %v, want %q %q %v", dev, disk, via, ok, wantDisk, wantVia, wantOK)
		}
	}
	f("/dev/sda", "sda", "", true)
	f("/dev/sda2", "sda", "sda2", true)
	f("/dev/mapper/vg-data", "nvme1n1", "dm-0 > nvme1n1p3", true)
	f("overlay", "", "", false)
	f("/dev/root", "", "", false)
}

// A virtio disk: /sys/block/vda/device points at virtio1, whose numa_node
// is on the PCI function two levels up.
func TestNUMANodeViaAncestor(t *testing.T) {
	h := &Host{Root: makeTree(t, files{
		"/sys/devices/pci0000:00/0000:00:02.0/numa_node":                "1",
		"/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/queue/": "",
		"/sys/block/vda": "->../devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
		"/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/device": "->../../../virtio1",
		"/sys/block/sdz/device/": "",
	})}
	if n, ok := h.numaNodeOf("/sys/block/vda/device"); !ok || n != 1 {
		t.Errorf("vda: node %d %v, want 1", n, ok)
	}
	if _, ok := h.numaNodeOf("/sys/block/sdz/device"); ok {
		t.Error("sdz has no numa_node anywhere, want not found")
	}
	if _, ok := h.numaNodeOf("/sys/block/missing/device"); ok {
		t.Error("missing device, want not found")
	}
}

// Inside a container the data dir sits on overlay: the filesystem is
// reported, the disk is "not visible here".
func TestDiskChecksContainer(t *testing.T) {
	h := &Host{Root: makeTree(t, files{
		"/proc/mounts": "overlay / overlay rw,relatime,lowerdir=/l,upperdir=/u 0 0",
	})}
	checks := h.diskChecks("/var/lib/sluice")
	if c := findCheck(t, checks, "data filesystem"); c.Status != StatusWarn || c.Current != "overlay on overlay (mount /, data dir /var/lib/sluice)" {
		t.Errorf("fs: %+v", c)
	}
	if c := findCheck(t, checks, "data mount atime"); c.Status != StatusWarn || c.Current != "atime updates (relatime)" {
		t.Errorf("atime: %+v", c)
	}
	if c := findCheck(t, checks, "data disk"); c.Status != StatusNotVisible {
		t.Errorf("disk: %+v", c)
	}
}

// Scheduler rules: SSD wants none (mq-deadline only worth a note), HDD
// wants mq-deadline; no Action when the wanted scheduler is not offered.
func TestSchedulerRules(t *testing.T) {
	f := func(rot, sched string, status Status, action bool) {
		t.Helper()
		h := &Host{Root: makeTree(t, files{
			"/sys/block/sdx/queue/rotational": rot,
			"/sys/block/sdx/queue/scheduler":  sched,
		})}
		c := findCheck(t, h.queueChecks("sdx", ""), "sdx scheduler")
		if c.Status != status || (c.Action != nil) != action {
			t.Errorf("rot=%s %q: got %s action=%v, want %s action=%v", rot, sched, c.Status, c.Action != nil, status, action)
		}
	}
	f("0", "[none] mq-deadline", StatusOK, false)
	f("0", "[mq-deadline] none", StatusInfo, false)
	f("0", "[kyber] mq-deadline", StatusWarn, false) // none not offered
	f("1", "[none] mq-deadline bfq", StatusWarn, true)
	f("1", "none [mq-deadline]", StatusOK, false)
	f("1", "[none]", StatusInfo, false) // no scheduler available (e.g. some dm devices)
}
