package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// netLab is one network namespace per node, each with a veth into a bridge
// in the test's namespace: node i is 10.77.S.(i+1), the bridge 10.77.S.254.
// Cutting node i off takes its bridge-side link down: its packets are lost
// in both directions with no reset, as with a pulled cable or a dropping
// firewall, which SIGSTOP (the other tests' stand-in) cannot show — a cut
// node keeps running and keeps believing what it last knew.
type netLab struct {
	t      *testing.T
	hosts  []string
	netns  []string
	links  []string // bridge-side veth of node i
	bridge string
}

// ipCmd runs ip with args and fails the test on error.
func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newNetLab builds the namespaces for n nodes, or skips the test where they
// cannot be made (not root, no ip(8), no netns support).
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip(8) (iproute2)")
	}
	tag := fmt.Sprintf("%04x", rand.IntN(1<<16))
	subnet := fmt.Sprintf("10.77.%d.", 1+rand.IntN(250))
	l := &netLab{t: t, bridge: "slbr" + tag}
	probe := "sluice-probe-" + tag
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespaces: %v: %s", err, out)
	}
	exec.Command("ip", "netns", "del", probe).Run()
	t.Cleanup(l.cleanup)
	l.ip("link", "add", l.bridge, "type", "bridge")
	l.ip("addr", "add", subnet+"254/24", "dev", l.bridge)
	l.ip("link", "set", l.bridge, "up")
	for i := range n {
		ns := fmt.Sprintf("sluice-%s-%d", tag, i+1)
		link, peer := fmt.Sprintf("slv%s%d", tag, i+1), fmt.Sprintf("slp%s%d", tag, i+1)
		l.ip("netns", "add", ns)
		l.netns = append(l.netns, ns)
		l.ip("link", "add", link, "type", "veth", "peer", "name", peer)
		l.links = append(l.links, link)
		l.ip("link", "set", link, "master", l.bridge)
		l.ip("link", "set", link, "up")
		l.ip("link", "set", peer, "netns", ns)
		l.ip("-n", ns, "link", "set", peer, "name", "eth0")
		l.ip("-n", ns, "addr", "add", fmt.Sprintf("%s%d/24", subnet, i+1), "dev", "eth0")
		l.ip("-n", ns, "link", "set", "eth0", "up")
		l.ip("-n", ns, "link", "set", "lo", "up")
		l.hosts = append(l.hosts, fmt.Sprintf("%s%d", subnet, i+1))
	}
	return l
}

// cut takes node i off the network; heal puts it back.
func (l *netLab) cut(i int)  { l.ip("link", "set", l.links[i], "down") }
func (l *netLab) heal(i int) { l.ip("link", "set", l.links[i], "up") }

func (l *netLab) cleanup() {
	for _, ns := range l.netns {
		exec.Command("ip", "netns", "del", ns).Run() // takes its veth pair along
	}
	exec.Command("ip", "link", "del", l.bridge).Run()
}

// TestClusterNetworkPartition: three `sluice serve` processes, each in its
// own network namespace, under a continuous acks=all idempotent load. A
// partition leader, then the active controller, is cut off the network for
// 6 s (twice the session timeout: it is fenced while it still runs and
// still thinks it leads) and healed. Every acknowledged record must be at
// its offset exactly once, and the replicas byte-identical, afterwards.
// SLUICE_CLUSTER_NETCUT_CYCLES repeats the pair of cuts (default once).
func TestClusterNetworkPartition(t *testing.T) {
	lab := newNetLab(t, 3)
	const topic, parts = "netcut", 6
	c := startProcClusterOn(t, lab.hosts, lab.netns, clusterArgs...)
	c.createTopicRF(kadm.NewClient(c.client()), topic, parts, 2)
	lp := startLoad(t, clusterProducer(c), topic, 20000)
	lp.waitAcked(2000, 60*time.Second)
	lp.takeStall()
	isolate := func(what string, v int) {
		t.Helper()
		start := time.Now()
		lab.cut(v)
		time.Sleep(6 * time.Second)
		lab.heal(v)
		c.waitHealthy(120*time.Second, parts, topic)
		lp.waitAcked(500, 60*time.Second)
		stall, end := lp.takeStall()
		t.Logf("cut node %d (%s) off for 6s: whole again and writable after %v; longest write stall %v, from +%v (%d acks so far)",
			v+1, what, time.Since(start).Round(time.Millisecond), stall.Round(time.Millisecond),
			end.Add(-stall).Sub(start).Round(time.Millisecond), lp.ackedCount())
	}
	cycles := 1
	if v, err := strconv.Atoi(os.Getenv("SLUICE_CLUSTER_NETCUT_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	for range cycles {
		a := c.activeController()
		p0 := int32(rand.IntN(parts))
		v := c.leaderOf(topic, p0)
		for p := int32(0); v == a && p < parts; p++ {
			v = c.leaderOf(topic, p) // prefer a leader that is not the controller
		}
		isolate("a partition leader", v)
		isolate("active controller", c.activeController())
	}
	lp.finish(120 * time.Second)
	t.Logf("producer: %s", lp.summary())
	c.waitHealthy(120*time.Second, parts, topic)
	n := c.verifyAcks(topic, parts, lp)
	size := c.compareReplicas(topic, parts)
	t.Logf("%d records in the log, all %d acknowledged ones at their offsets; 3 replicas of %d partitions identical (%d bytes each)",
		n, lp.ackedCount(), parts, size)
}
