package node

import (
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/segstore"
	"github.com/sluicemq/sluice/tuning"
)

// numa.pinning=auto: where the broker's threads run.
//
// At New the node reads the CPU/NUMA topology (restricted to the CPUs this
// process may use: a container's cpuset, a taskset) and the NUMA nodes of
// the data disk and NIC, and makes a tuning.Plan with one shard per event
// loop. Then:
//   - event loop i is locked to its OS thread and pinned to shard i's CPU
//     (netpoll.Config.OnLoopStart, run on the loop itself);
//   - segstore runs one committer per NUMA node the plan uses, each pinned
//     to the CPUs of its node's shards (segstore.Config.CommitterStart);
//   - every partition gets a shard from a tuning.Balancer (on the disk's
//     node when known, else spread over all shards, balanced by partition
//     count), and the shard's node selects the partition's committer.
//
// What this does not do: gnet binds connections, not partitions, to loops,
// so a partition's requests (parsing, CRC checks, offset assignment) run on
// whichever loop its client's connection lives on, pinned or not near the
// partition's shard. The partition → shard mapping decides only which
// committer (and so which node's CPUs) submits its writes and runs its
// completions; the loops are simply spread over the plan's CPUs. io_uring's
// io-wq kernel workers are not pinned either (IORING_REGISTER_IOWQ_AFF is
// not used).
//
// On a host with one NUMA node whose committer would get every CPU the
// process may use anyway, the committer is not locked or pinned: pinning it
// would change nothing but the cost of waking a locked goroutine.
//
// Failures never stop the broker: when the topology cannot be read or a
// probe pin fails at New (EPERM under seccomp, EINVAL outside a cpuset),
// one warning is logged and nothing is pinned, one committer, as with
// numa.pinning=off. A pin that fails later (the cpuset shrank at run time)
// logs one warning and gives every thread pinned so far back all allowed
// CPUs; committers stay as they are (the count is fixed at Open).
//
// Concurrency: pinning is built in New; its hooks run on loop and committer
// goroutines and its mapping is read by /debug/shards and the gauges, all
// under mu, which is taken alone (no lock of the node or segstore is held
// while taking it, and none is taken under it; the Balancer's own mutex is
// taken under it, never the reverse).
type pinning struct {
	on     bool
	reason string // why off (config, or the failure that turned it off)
	log    *slog.Logger

	plan    tuning.Plan
	allowed []int // CPUs the process may use: what a failed pinning gives back
	// committer i serves NUMA node nodes[i] and is pinned to cpus[i] (the
	// CPUs of that node's shards); nodeCommitter inverts nodes.
	nodes         []int
	cpus          [][]int
	nodeCommitter map[int]int
	pinCommitters bool
	pin           func(cpus []int) error // tuning.PinCurrentThread; a seam for tests
	bal           *tuning.Balancer

	mu            sync.Mutex
	parts         map[shardKey]int // partition -> shard
	perShard      []int            // partitions per shard
	loopTids      []int            // by loop (= shard); 0: not started
	committerTids []int            // by committer; 0: not started or not pinned
	failed        bool
}

// shardKey names a partition in the shard mapping.
type shardKey struct {
	topic     string
	partition int32
}

// numaSeams lets tests run the pinning code against a fake /sys tree and a
// failing pin. Zero: the real host.
type numaSeams struct {
	host *tuning.Host
	pin  func(cpus []int) error
}

// newPinning decides the placement for cfg (validated). It never fails:
// anything that goes wrong yields an off pinning whose reason says why,
// logged once as a warning.
func newPinning(cfg *Config) *pinning {
	if cfg.NumaPinning == tuning.PinningOff {
		return &pinning{reason: "numa.pinning=off", log: cfg.Logger}
	}
	off := func(err error) *pinning {
		p := &pinning{reason: err.Error(), log: cfg.Logger}
		cfg.Logger.Warn("numa.pinning=auto: running unpinned", "err", err)
		return p
	}
	host := cfg.numa.host
	if host == nil {
		host = tuning.NewHost("/")
	}
	topo, err := host.ReadTopology()
	if err != nil {
		return off(fmt.Errorf("cannot read the CPU topology: %w", err))
	}
	allowed, err := tuning.AllowedCPUs()
	if err != nil {
		return off(err)
	}
	diskNode, nicNode := host.Placement(cfg.DataDir)
	loops := cfg.Net.Loops
	if loops <= 0 {
		loops = runtime.NumCPU() // netpoll's default
	}
	p, err := planPinning(topo, allowed, loops, diskNode, nicNode)
	if err != nil {
		return off(err)
	}
	p.log = cfg.Logger
	if cfg.numa.pin != nil {
		p.pin = cfg.numa.pin
	}
	if err := p.probe(); err != nil {
		return off(fmt.Errorf("cannot pin threads here: %w", err))
	}
	cfg.Logger.Info("numa pinning", "plan", p.plan.Summary(), "topology", topo.String(),
		"allowed_cpus", tuning.FormatCPUList(allowed), "disk_node", p.plan.DiskNode, "nic_node", p.plan.NICNode,
		"committers", len(p.nodes), "pin_committers", p.pinCommitters)
	return p
}

// planPinning is the pure part: topology, allowed CPUs, loop count and the
// disk's and NIC's nodes (-1 unknown) in; plan, committers and balancer out.
func planPinning(topo tuning.Topology, allowed []int, loops, diskNode, nicNode int) (*pinning, error) {
	plan, err := tuning.NewPlan(topo.Restrict(allowed), loops, diskNode, nicNode)
	if err != nil {
		return nil, err
	}
	p := &pinning{on: true, plan: plan, allowed: slices.Sorted(slices.Values(allowed)),
		nodeCommitter: map[int]int{}, pin: tuning.PinCurrentThread, bal: tuning.NewBalancer(plan),
		parts: map[shardKey]int{}, perShard: make([]int, len(plan.Shards)), loopTids: make([]int, len(plan.Shards))}
	for _, s := range plan.Shards {
		i, ok := p.nodeCommitter[s.Node]
		if !ok {
			i = len(p.nodes)
			p.nodeCommitter[s.Node] = i
			p.nodes = append(p.nodes, s.Node)
			p.cpus = append(p.cpus, nil)
		}
		for _, c := range s.CPUs {
			if !slices.Contains(p.cpus[i], c) {
				p.cpus[i] = append(p.cpus[i], c)
			}
		}
	}
	for i := range p.cpus {
		slices.Sort(p.cpus[i])
	}
	p.committerTids = make([]int, len(p.nodes))
	p.pinCommitters = len(p.nodes) > 1 || !slices.Equal(p.cpus[0], p.allowed)
	return p, nil
}

// probe pins a throwaway thread to every CPU the plan uses, one after the
// other, so that a host that refuses (seccomp, cpuset) is found before any
// loop or committer is pinned. The goroutine exits still locked, so the
// runtime destroys the probed thread.
func (p *pinning) probe() error {
	done := make(chan error, 1)
	go func() {
		for _, cpus := range p.cpus {
			for _, c := range cpus {
				if err := p.pin([]int{c}); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	return <-done
}

// configureStore adds the committers and their hooks to sc. newEngine
// makes the engines of committers 1 and up. Off: sc is left alone.
func (p *pinning) configureStore(sc *segstore.Config, newEngine func() (ioring.Engine, error)) {
	if !p.on {
		return
	}
	sc.Committers = len(p.nodes)
	sc.NewEngine = func(int) (ioring.Engine, error) { return newEngine() }
	sc.CommitterFor = p.committerFor
	sc.LogDeleted = p.forget
	if p.pinCommitters {
		sc.CommitterStart = p.pinCommitter
	}
}

// loopHook is netpoll's OnLoopStart, nil when off (so loops stay unlocked).
func (p *pinning) loopHook() func(int) {
	if !p.on {
		return nil
	}
	return p.pinLoop
}

// pinLoop runs on event loop loop's goroutine (locked to its thread by
// netpoll) and pins the thread to its shard's CPUs.
func (p *pinning) pinLoop(loop int) {
	shard := p.plan.Shards[loop%len(p.plan.Shards)]
	p.pinSelf(&p.loopTids[loop%len(p.loopTids)], fmt.Sprintf("event loop %d", loop), shard.CPUs)
}

// pinCommitter runs first on committer i's goroutine (locked by segstore).
func (p *pinning) pinCommitter(i int) {
	p.pinSelf(&p.committerTids[i], fmt.Sprintf("committer %d (node %d)", i, p.nodes[i]), p.cpus[i])
}

// pinSelf pins the calling thread and records its id in *tid (under mu).
// The extra runtime lock PinCurrentThread takes is never released, so the
// thread dies with its goroutine instead of carrying the pinning into the
// runtime's pool (gnet unlocks its own lock when a loop ends).
func (p *pinning) pinSelf(tid *int, what string, cpus []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed {
		return
	}
	if err := p.pin(cpus); err != nil {
		p.failLocked(what, err)
		return
	}
	*tid = unix.Gettid()
}

// failLocked turns pinning off at run time: one warning, and every thread
// pinned so far may run on all allowed CPUs again. Called with mu held.
func (p *pinning) failLocked(what string, err error) {
	p.failed = true
	p.reason = fmt.Sprintf("pinning %s failed: %v", what, err)
	p.log.Warn("numa.pinning=auto: pinning failed; unpinning every thread", "thread", what, "err", err)
	for _, tids := range [][]int{p.loopTids, p.committerTids} {
		for i, tid := range tids {
			if tid != 0 {
				if err := tuning.SetThreadCPUs(tid, p.allowed); err != nil {
					p.log.Warn("numa.pinning=auto: cannot unpin thread", "tid", tid, "err", err)
				}
				tids[i] = 0
			}
		}
	}
}

// committerFor is segstore's CommitterFor: the partition's shard (assigned
// now, or kept from before) decides its committer. segstore calls it with
// its lock held; it takes only mu.
func (p *pinning) committerFor(topic string, partition int32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := shardKey{topic, partition}
	s, ok := p.parts[k]
	if !ok {
		// Every partition lives in the one data directory, on the disk's node.
		s = p.bal.Assign(p.plan.DiskNode)
		p.parts[k] = s
		p.perShard[s]++
	}
	return p.nodeCommitter[p.plan.Shards[s].Node]
}

// forget is segstore's LogDeleted.
func (p *pinning) forget(topic string, partition int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := shardKey{topic, partition}
	if s, ok := p.parts[k]; ok {
		delete(p.parts, k)
		p.perShard[s]--
		p.bal.Release(s)
	}
}

// shardOf returns a partition's shard, or -1. Safe for concurrent use.
func (p *pinning) shardOf(topic string, partition int32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.parts[shardKey{topic, partition}]; ok {
		return s
	}
	return -1
}
