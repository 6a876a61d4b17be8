package tuning

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// files describes a fake tree: path -> content. A path ending in "/" is an
// empty directory; content starting with "->" makes a symlink to the rest.
type files map[string]string

func makeTree(t *testing.T, fs files) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range fs {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(p, "/"):
			err := os.MkdirAll(full, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(content[2:], full); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(full, []byte(content+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func readTree(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// fakeHost is a Host on root with fixed seams, so results do not depend on
// the machine running the tests.
func fakeHost(root string) *Host {
	return &Host{
		Root:    root,
		Rlimit:  func() (uint64, uint64, error) { return 1024, 524288, nil },
		IOURing: func() error { return nil },
	}
}

// bareMetal is a 2-socket box: 2 nodes x 8 CPUs with CPU 12 offline, the
// data on an NVMe partition on node 1 (XFS, noatime), root on a SATA disk,
// a NIC on node 1 with one RX queue and both MSI vectors on CPU 0, and a
// pile of settings sluice should warn about.
func bareMetal() files {
	fs := files{
		"/sys/devices/system/cpu/online":                                     "0-11,13-15",
		"/sys/devices/system/cpu/present":                                    "0-15",
		"/sys/devices/system/node/node0/cpulist":                             "0-7",
		"/sys/devices/system/node/node1/cpulist":                             "8-15",
		"/sys/devices/system/node/node0/distance":                            "10 21",
		"/sys/devices/system/node/node1/distance":                            "21 10",
		"/sys/kernel/mm/transparent_hugepage/enabled":                        "[always] madvise never",
		"/sys/devices/system/clocksource/clocksource0/current_clocksource":   "hpet",
		"/sys/devices/system/clocksource/clocksource0/available_clocksource": "tsc hpet acpi_pm",
		"/proc/sys/kernel/io_uring_disabled":                                 "0",
		"/proc/self/status":                                                  "Name:\tsluice\nSeccomp:\t0\nSeccomp_filters:\t0",
		"/proc/sys/vm/swappiness":                                            "60",
		"/proc/sys/vm/dirty_ratio":                                           "20",
		"/proc/sys/vm/dirty_bytes":                                           "0",
		"/proc/sys/vm/dirty_background_ratio":                                "10",
		"/proc/sys/vm/dirty_background_bytes":                                "0",
		"/proc/sys/vm/dirty_expire_centisecs":                                "3000",
		"/proc/sys/net/core/somaxconn":                                       "128",
		"/proc/sys/net/ipv4/tcp_rmem":                                        "4096\t131072\t6291456",
		"/proc/sys/net/ipv4/tcp_wmem":                                        "4096\t16384\t33554432",
		"/proc/sys/net/core/netdev_max_backlog":                              "1000",
		"/proc/mounts": "/dev/sda2 / ext4 rw,relatime 0 0\n" +
			"/dev/nvme0n1p1 /data xfs rw,noatime,attr2 0 0\n" +
			"tmpfs /data/tmp tmpfs rw 0 0",
		// NVMe: partition dir under the disk, numa_node on the PCI function
		// reached through device/device.
		"/sys/block/nvme0n1/queue/scheduler":         "[bfq] mq-deadline none",
		"/sys/block/nvme0n1/queue/nomerges":          "0",
		"/sys/block/nvme0n1/queue/read_ahead_kb":     "64",
		"/sys/block/nvme0n1/queue/write_cache":       "write back",
		"/sys/block/nvme0n1/queue/rotational":        "0",
		"/sys/block/nvme0n1/nvme0n1p1/partition":     "1",
		"/sys/block/nvme0n1/device/device/numa_node": "1",
		"/sys/block/sda/queue/scheduler":             "[mq-deadline] none",
		"/sys/block/sda/queue/rotational":            "1",
		// NIC eth0 -> PCI function on node 1 with IRQs 40 and 41.
		"/sys/devices/pci0000:80/0000:80:01.0/numa_node":                     "1",
		"/sys/devices/pci0000:80/0000:80:01.0/msi_irqs/40":                   "msix",
		"/sys/devices/pci0000:80/0000:80:01.0/msi_irqs/41":                   "msix",
		"/sys/devices/pci0000:80/0000:80:01.0/net/eth0/queues/rx-0/rps_cpus": "00000000,00000000",
		"/sys/class/net/eth0": "->../../devices/pci0000:80/0000:80:01.0/net/eth0",
		"/sys/devices/pci0000:80/0000:80:01.0/net/eth0/device": "->../../../0000:80:01.0",
		"/sys/class/net/lo/queues/rx-0/rps_cpus":               "0",
		"/proc/interrupts": "           CPU0       CPU1\n" +
			" 40:   100   0   PCI-MSIX-0000:80:01.0   0-edge   eth0-TxRx-0\n" +
			" 41:   100   0   PCI-MSIX-0000:80:01.0   1-edge   eth0-TxRx-1\n" +
			"NMI:     0   0   Non-maskable interrupts",
		"/proc/irq/40/smp_affinity_list": "0",
		"/proc/irq/41/smp_affinity_list": "0",
	}
	for c := 0; c < 16; c++ {
		gov := "powersave"
		if c >= 8 {
			gov = "performance"
		}
		fs[fmt.Sprintf("/sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor", c)] = gov
	}
	return fs
}

func findCheck(t *testing.T, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q", name)
	return Check{}
}

// errSeam is what a seccomp-filtered io_uring_setup returns.
var errSeam = unix.EPERM
