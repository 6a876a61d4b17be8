package tuning

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Host is the probe layer: every read of /proc and /sys goes through it, so
// tests point Root at a fake tree and the checks cannot tell the difference.
// Things that are not files (resource limits, a syscall probe) are seams.
//
// A Host is read-only after construction and safe for concurrent use; the
// seams must be too.
type Host struct {
	// Root is the directory that stands for "/" (default "/").
	Root string
	// Rlimit returns RLIMIT_NOFILE of this process.
	Rlimit func() (soft, hard uint64, err error)
	// IOURing tries to create a tiny io_uring and returns why it could not
	// (nil when it works). Nil means "not probed".
	IOURing func() error
}

// NewHost returns a Host reading the real machine under root ("/" normally).
// Safe to call concurrently.
func NewHost(root string) *Host {
	if root == "" {
		root = "/"
	}
	h := &Host{Root: root, Rlimit: realRlimit}
	if root == "/" {
		// Only the real root is the machine this process runs on; a
		// syscall probe says nothing about a fake tree.
		h.IOURing = probeIOURing
	}
	return h
}

func realRlimit() (uint64, uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, err
	}
	return rl.Cur, rl.Max, nil
}

// probeIOURing calls io_uring_setup(1) directly: it is the only way to see a
// seccomp filter or the io_uring_disabled sysctl from inside a container.
func probeIOURing() error {
	var params [120]byte // struct io_uring_params, zeroed = defaults
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		return errno
	}
	return unix.Close(int(fd))
}

// path maps an absolute host path into the tree under Root.
func (h *Host) path(p string) string { return filepath.Join(h.Root, p) }

// read returns the trimmed content of p and whether it could be read. Any
// failure (missing, masked, permission) is "not visible", never an error,
// because containers and VMs hide parts of /sys and /proc routinely.
func (h *Host) read(p string) (string, bool) {
	b, err := os.ReadFile(h.path(p))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// readInt reads a file holding one decimal integer.
func (h *Host) readInt(p string) (int64, bool) {
	s, ok := h.read(p)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.Fields(s + " x")[0], 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

func (h *Host) exists(p string) bool {
	_, err := os.Stat(h.path(p))
	return err == nil
}

// list returns the sorted names in directory p that start with prefix.
func (h *Host) list(p, prefix string) []string {
	ents, err := os.ReadDir(h.path(p))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// write replaces the content of an existing file. It never creates files:
// a path that does not exist is a kernel knob this host does not have.
func (h *Host) write(p, value string) error {
	f, err := os.OpenFile(h.path(p), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// numaNodeOf finds the NUMA node of a device directory such as
// /sys/block/vda/device. The numa_node file sits on the PCI function, which
// may be the device itself, its "device" child (NVMe) or an ancestor
// (virtio-blk, virtio-net), so walk up the resolved path. -1 means the kernel
// does not know (single node, or firmware without SRAT/proximity info).
func (h *Host) numaNodeOf(devDir string) (int, bool) {
	for _, p := range []string{devDir + "/numa_node", devDir + "/device/numa_node"} {
		if v, ok := h.readInt(p); ok {
			return int(v), true
		}
	}
	real, err := filepath.EvalSymlinks(h.path(devDir))
	if err != nil {
		return 0, false
	}
	stop := h.path("/sys")
	for d := filepath.Dir(real); strings.HasPrefix(d, stop) && d != stop; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "numa_node"))
		if err != nil {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// irqsOf lists the MSI interrupts of a device directory, looking in the
// device and its ancestors (virtio devices hang under the PCI function that
// owns the vectors).
func (h *Host) irqsOf(devDir string) []int {
	real, err := filepath.EvalSymlinks(h.path(devDir))
	if err != nil {
		return nil
	}
	stop := h.path("/sys")
	for d := real; strings.HasPrefix(d, stop) && d != stop; d = filepath.Dir(d) {
		ents, err := os.ReadDir(filepath.Join(d, "msi_irqs"))
		if err != nil {
			continue
		}
		var irqs []int
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				irqs = append(irqs, n)
			}
		}
		sort.Ints(irqs)
		return irqs
	}
	return nil
}

// bracketed returns the selected word of a sysfs choice file such as
// "none [mq-deadline] kyber" and all offered words.
func bracketed(s string) (sel string, all []string) {
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			f = strings.Trim(f, "[]")
			sel = f
		}
		all = append(all, f)
	}
	if sel == "" && len(all) == 1 {
		// Only one word and no brackets: the file names just the active
		// choice (some drivers; also what a fake tree holds after a write).
		sel = all[0]
	}
	return sel, all
}
