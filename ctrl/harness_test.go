package ctrl

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// cluster is a deterministic test harness: n controllers on a MemNetwork with a FakeClock; time moves only in tick.
type cluster struct {
	t     *testing.T
	net   *MemNetwork
	clock *FakeClock
	ids   []uint64
	nodes map[uint64]*Node // nil when crashed
	dirs  map[uint64]string
	cfg   Config
}

const tickEvery = 100 * time.Millisecond

func newCluster(t *testing.T, n int, tweak func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, net: NewMemNetwork(1), clock: NewFakeClock(), nodes: map[uint64]*Node{}, dirs: map[uint64]string{}}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, uint64(i))
	}
	c.cfg = Config{Peers: c.ids, Transport: c.net.Transport(), Clock: c.clock, SnapshotEvery: 1000}
	if tweak != nil {
		tweak(&c.cfg)
	}
	base := t.TempDir()
	for _, id := range c.ids {
		c.dirs[id] = filepath.Join(base, fmt.Sprint(id))
		c.start(id)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd != nil {
				nd.Stop()
			}
		}
	})
	return c
}

func (c *cluster) start(id uint64) *Node {
	c.t.Helper()
	cfg := c.cfg
	cfg.ID, cfg.Dir = id, c.dirs[id]
	nd, _, err := NewNode(cfg)
	if err != nil {
		c.t.Fatalf("start %d: %v", id, err)
	}
	c.nodes[id] = nd
	c.net.Attach(id, nd)
	return nd
}

// crash stops a node abruptly (its files stay as last fsynced) and takes it off the network.
func (c *cluster) crash(id uint64) {
	c.nodes[id].Stop()
	c.nodes[id] = nil
	c.net.Down(id)
}

// settle runs Ready cycles and deliveries until nothing moves.
func (c *cluster) settle() {
	c.t.Helper()
	for round := 0; round < 1000; round++ {
		moved := false
		for _, id := range c.ids {
			if nd := c.nodes[id]; nd != nil {
				for {
					did, err := nd.Process()
					if err != nil {
						c.t.Fatalf("node %d: %v", id, err)
					}
					if !did {
						break
					}
					moved = true
				}
			}
		}
		if c.net.Deliver() > 0 {
			moved = true
		}
		if !moved {
			return
		}
	}
	c.t.Fatal("cluster did not settle in 1000 rounds")
}

// tick advances the clock, the network and every live node by k ticks, settling after each.
func (c *cluster) tick(k int) {
	c.t.Helper()
	for i := 0; i < k; i++ {
		c.clock.Advance(tickEvery)
		c.net.Advance()
		for _, id := range c.ids {
			if nd := c.nodes[id]; nd != nil {
				nd.Tick()
			}
		}
		c.settle()
	}
}

// leader ticks until exactly one live node among among is active and returns it, failing after max ticks.
func (c *cluster) leader(among []uint64, max int) uint64 {
	c.t.Helper()
	for i := 0; i <= max; i++ {
		var found []uint64
		for _, id := range among {
			if nd := c.nodes[id]; nd != nil {
				if _, _, active := nd.Status(); active {
					found = append(found, id)
				}
			}
		}
		if len(found) == 1 {
			return found[0]
		}
		c.tick(1)
	}
	var st []string
	for _, id := range among {
		if nd := c.nodes[id]; nd != nil {
			nd.mu.Lock()
			bs := nd.rn.BasicStatus()
			st = append(st, fmt.Sprintf("%d: %v term %d lead %d commit %d leading %v", id, bs.RaftState, bs.Term, bs.Lead, bs.Commit, nd.leading))
			nd.mu.Unlock()
		}
	}
	c.t.Fatalf("no single leader among %v after %d ticks: %v", among, max, st)
	return 0
}

// propose proposes r on node id and ticks until its callback ran; it returns the callback's result.
func (c *cluster) propose(id uint64, r Record, maxTicks int) (uint64, error, bool) {
	c.t.Helper()
	var idx uint64
	var perr error
	got := false
	if err := c.nodes[id].Propose(r, func(i uint64, err error) { idx, perr, got = i, err, true }); err != nil {
		return 0, err, true
	}
	for i := 0; i < maxTicks && !got; i++ {
		c.settle()
		if !got {
			c.tick(1)
		}
	}
	return idx, perr, got
}

func (c *cluster) snapshotOf(id uint64) []byte {
	c.t.Helper()
	var b []byte
	c.nodes[id].Read(func(s *State) {
		var err error
		if b, err = s.MarshalSnapshot(); err != nil {
			c.t.Fatal(err)
		}
	})
	return b
}

// converged checks every live node holds byte-identical state.
func (c *cluster) converged() {
	c.t.Helper()
	var ref []byte
	var refID uint64
	for _, id := range c.ids {
		if c.nodes[id] == nil {
			continue
		}
		b := c.snapshotOf(id)
		if ref == nil {
			ref, refID = b, id
		} else if !bytes.Equal(ref, b) {
			c.t.Fatalf("node %d state differs from node %d:\n%s\n%s", id, refID, b, ref)
		}
	}
}

func configRec(key, value string) Record {
	return Record{Type: TypeSetConfig, SetConfig: &SetConfig{Resource: ResourceBroker, Key: key, Value: &value}}
}

// maxElectTicks bounds waiting for a leader. One election takes 10..19 ticks after the old leader's last
// heartbeat; with two survivors whose randomized timeouts coincide, split votes chain about 1% of the time per
// round, so the bound allows several rounds rather than flake.
const maxElectTicks = 150
