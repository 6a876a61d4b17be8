package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// procCluster is a cluster of `sluice serve` processes on loopback, every
// node broker + controller voter. Node i (0-based) has node.id i+1. Its Kafka
// and controller ports are fixed when the cluster is made (the voters list
// names the controller ports, and a restarted node must come back where the
// others expect it); its data directory survives restarts.
//
// Concurrency: a procCluster is driven by the test goroutine only.
type procCluster struct {
	t      *testing.T
	kafka  []int // Kafka port of node i
	ctrl   []int // controller port of node i
	dirs   []string
	args   []string  // extra arguments for every node, after the cluster ones
	nodes  []*broker // current incarnation of node i
	paused []bool    // node i is SIGSTOPped
	down   []bool    // node i was stopped by the test (kill9, terminate)
	runs   []int     // incarnations of node i so far (names its log files)
	logDir string
	direct []*kgo.Client // seeded with node i alone; see (*procCluster).direct
	// hosts[i] is node i's address (127.0.0.1 unless it runs in network
	// namespace netns[i]; cluster_netns_test.go).
	hosts []string
	netns []string
}

// startProcCluster starts size nodes with extra serve arguments and waits
// until every node lists all of them as live brokers.
func startProcCluster(t *testing.T, size int, extra ...string) *procCluster {
	t.Helper()
	hosts := make([]string, size)
	for i := range hosts {
		hosts[i] = "127.0.0.1"
	}
	return startProcClusterOn(t, hosts, make([]string, size), extra...)
}

// startProcClusterOn is startProcCluster with node i on hosts[i], run in
// network namespace netns[i] unless that is "".
func startProcClusterOn(t *testing.T, hosts, netns []string, extra ...string) *procCluster {
	t.Helper()
	size := len(hosts)
	ports := reservePortsProc(t, 2*size)
	c := &procCluster{t: t, kafka: ports[:size], ctrl: ports[size:], args: extra, logDir: t.TempDir(),
		nodes: make([]*broker, size), paused: make([]bool, size), down: make([]bool, size), runs: make([]int, size),
		hosts: hosts, netns: netns}
	for i := 0; i < size; i++ {
		c.dirs = append(c.dirs, t.TempDir())
		// Fetch is pinned to v12 so the replica comparison sends what
		// the brief of those tests says (v12: topics by name, replica id
		// in the body).
		v := kversion.Stable()
		v.SetMaxKeyVersion(1, 12)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr(i)), kgo.MaxVersions(v), kgo.DisableIdempotentWrite(),
			kgo.RetryTimeout(2*time.Second), kgo.DialTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c.direct = append(c.direct, cl)
	}
	t.Cleanup(c.cleanup)
	for i := 0; i < size; i++ {
		c.spawn(i)
	}
	for i := 0; i < size; i++ {
		c.nodes[i].waitStarted()
	}
	c.waitLive(size, 60*time.Second)
	return c
}

// reservePortsProc finds n distinct free loopback ports (closed again
// before use: another process could take one meanwhile, which is rare).
func reservePortsProc(t *testing.T, n int) []int {
	t.Helper()
	return portsBelowEphemeral(t, n)
}

// portsBelowEphemeral finds n bindable loopback ports below Linux's
// ephemeral range (32768+). The ports are released before the nodes bind
// them; from the ephemeral range, a port-0 listener (another node's metrics)
// or a client socket could take one in between.
func portsBelowEphemeral(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for p := 20000 + rand.IntN(12000-4*n); len(out) < n && p < 32768; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	if len(out) < n {
		t.Fatalf("found only %d free ports below 32768", len(out))
	}
	return out
}

func (c *procCluster) size() int { return len(c.nodes) }

// addr is node i's Kafka address.
func (c *procCluster) addr(i int) string {
	return net.JoinHostPort(c.hosts[i], strconv.Itoa(c.kafka[i]))
}

func (c *procCluster) seeds() []string {
	var out []string
	for i := range c.nodes {
		out = append(out, c.addr(i))
	}
	return out
}

func (c *procCluster) voters() string {
	var vs []string
	for i := range c.nodes {
		vs = append(vs, fmt.Sprintf("%d@%s:%d", i+1, c.hosts[i], c.ctrl[i]))
	}
	return strings.Join(vs, ",")
}

// spawn starts node i's next incarnation without waiting for it to listen.
// It is spawn() of proc_test.go with the log kept per node and incarnation
// (and not dumped whole on failure: see cleanup).
func (c *procCluster) spawn(i int) *broker {
	t := c.t
	t.Helper()
	if b := c.nodes[i]; b != nil && !b.exited() {
		t.Fatalf("node %d: spawn while incarnation %d still runs", i+1, c.runs[i])
	}
	c.runs[i]++
	args := []string{"serve",
		"--override", "node.id=" + strconv.Itoa(i+1),
		"--override", "controller.quorum.voters=" + c.voters(),
		"--override", fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://%s:%d", c.addr(i), c.hosts[i], c.ctrl[i]),
		"--override", "controller.listener.names=CONTROLLER",
		"--log-dirs", c.dirs[i], "--metrics-listen", c.hosts[i] + ":0", "--log-format", "json"}
	if lvl := os.Getenv("SLUICE_CLUSTER_LOG_LEVEL"); lvl != "" {
		args = append(args, "--log-level", lvl) // e.g. debug, to chase a failure
	}
	args = append(args, c.args...)
	b := &broker{t: t, logPath: filepath.Join(c.logDir, fmt.Sprintf("node%d-run%02d.log", i+1, c.runs[i])),
		done: make(chan struct{})}
	logf, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command(sluiceBin(t), args...)
	if ns := c.netns[i]; ns != "" {
		// ip execs the broker in place: the pid is the broker's.
		b.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, sluiceBin(t)}, args...)...)
	}
	b.cmd.Dir = c.logDir
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.Env = cleanEnv()
	b.cmd.SysProcAttr = childAttr()
	b.spawned = time.Now()
	if err := b.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() {
		err := b.cmd.Wait()
		logf.Close()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.exitCode = ee.ExitCode()
		} else if err != nil {
			b.exitCode = -2
		}
		close(b.done)
	}()
	c.nodes[i], c.paused[i], c.down[i] = b, false, false
	return b
}

// start starts node i again (same ports and data) and waits until it
// listens. Rejoining the ISR takes longer: see waitHealthy.
func (c *procCluster) start(i int) {
	c.t.Helper()
	c.spawn(i).waitStarted()
}

// kill9 SIGKILLs node i and reaps it; it returns when the signal was sent.
func (c *procCluster) kill9(i int) time.Time {
	c.t.Helper()
	b := c.nodes[i]
	at := time.Now()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("node %d: SIGKILL: %v", i+1, err)
	}
	<-b.done
	c.paused[i], c.down[i] = false, true
	return at
}

// terminate SIGTERMs node i (a controlled shutdown) and returns its status.
func (c *procCluster) terminate(i int) int {
	c.t.Helper()
	c.down[i] = true
	return c.nodes[i].stop(syscall.SIGTERM)
}

// pause SIGSTOPs node i: a hung broker, its connections open but silent.
func (c *procCluster) pause(i int) {
	c.t.Helper()
	if err := c.nodes[i].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatalf("node %d: SIGSTOP: %v", i+1, err)
	}
	c.paused[i] = true
}

func (c *procCluster) resume(i int) {
	c.t.Helper()
	if err := c.nodes[i].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		c.t.Fatalf("node %d: SIGCONT: %v", i+1, err)
	}
	c.paused[i] = false
}

// up reports whether node i runs and is not stopped.
func (c *procCluster) up(i int) bool {
	return c.nodes[i] != nil && !c.nodes[i].exited() && !c.paused[i]
}

// checkNoneExited fails the test if a node that should run has exited on
// its own (a crash).
func (c *procCluster) checkNoneExited() {
	c.t.Helper()
	for i, b := range c.nodes {
		if b != nil && b.exited() && !c.down[i] {
			c.t.Fatalf("node %d (incarnation %d) exited with status %d on its own; log %s", i+1, c.runs[i], b.exitCode, b.logPath)
		}
	}
}

// client is a kgo client bootstrapping from every node.
func (c *procCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.RetryTimeout(60 * time.Second)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// cleanup kills every node, then, if the test failed, keeps the logs: all
// of them, a listing of the data directories and (up to 256 MiB) the data
// directories themselves are copied under $SLUICE_CLUSTER_EVIDENCE/<test>-<time>/
// when that is set (SLUICE_CLUSTER_KEEP=1: even if it passed), and the last
// lines of each node's latest log are printed.
func (c *procCluster) cleanup() {
	for _, b := range c.nodes {
		if b != nil {
			b.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies of SIGKILL too, but be plain
			b.kill()
		}
	}
	for _, cl := range c.direct {
		cl.Close()
	}
	keep := os.Getenv("SLUICE_CLUSTER_KEEP") != "" // keep a passing run's logs too
	if !c.t.Failed() && !keep {
		return
	}
	if dir := os.Getenv("SLUICE_CLUSTER_EVIDENCE"); dir != "" {
		dst := filepath.Join(dir, strings.ReplaceAll(c.t.Name(), "/", "_")+"-"+time.Now().Format("20060102-150405"))
		if err := os.MkdirAll(dst, 0o755); err == nil {
			ents, _ := os.ReadDir(c.logDir)
			for _, e := range ents {
				if data, err := os.ReadFile(filepath.Join(c.logDir, e.Name())); err == nil {
					os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644)
				}
			}
			os.WriteFile(filepath.Join(dst, "data-dirs.txt"), []byte(c.describeDirs()), 0o644)
			c.copyDirs(dst, 256<<20)
			c.t.Logf("cluster logs kept in %s", dst)
		}
	}
	if !c.t.Failed() {
		return
	}
	for i, b := range c.nodes {
		if b != nil {
			c.t.Logf("node %d incarnation %d, last log lines:\n%s", i+1, c.runs[i], lastLines(b.output(), 40))
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
