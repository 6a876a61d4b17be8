// Package tuning owns what sluice knows about the host it runs on: the
// checks behind `sluice tune` (kernel, memory, disk, filesystem, network,
// limits, clock) and the CPU/NUMA topology the node uses to pin shards.
//
// Layers:
//   - Host is the probe layer. Every read of /proc and /sys goes through
//     Host.Root, so tests run the same code against fake trees; what is not
//     a file (RLIMIT_NOFILE, an io_uring_setup probe) is a function seam. A
//     missing or unreadable file is reported as "not visible here"
//     (containers, VMs, old kernels), never as an error.
//   - Checks turn probes into Check values: current vs recommended, a
//     status, one or two sentences on why it matters for a log broker, and
//     an Action only when the change is a sysctl/sysfs write that can be
//     reverted by writing the old value back. Process limits, mount options
//     and IRQ affinity (which irqbalance would fight) are advice only.
//   - Topology, NewPlan and Balancer are pure: topology in, shard→CPU plan
//     and partition→shard assignment out; Topology.Restrict narrows a
//     topology to the CPUs this process may use (AllowedCPUs: cpusets,
//     taskset). PinCurrentThread applies one shard's pinning to the calling
//     thread; SetThreadCPUs changes another thread's by id (undoing it).
//   - Run is the CLI on top.
//
// Concurrency: Host, Topology and Plan are read-only values after
// construction and may be shared between goroutines. Collect only reads.
// Apply writes kernel settings and must not run concurrently with another
// Apply. Balancer has its own mutex and no lock order with anything else.
// PinCurrentThread affects only the calling goroutine's OS thread, which
// stays locked to it.
package tuning
