package ctrl

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A real-TCP test cluster: controllers on 127.0.0.1, each a Net + Node driven by Run with a short tick.

const netTick = 20 * time.Millisecond

type netMember struct {
	id     uint64
	addr   string
	net    *Net
	node   *Node
	cancel context.CancelFunc
	ran    chan struct{}
}

func testSlog() *slog.Logger {
	if os.Getenv("CTRL_NET_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// freeAddrs reserves n loopback ports. They are released before use, so another process could take one in
// between; on a test machine that is rare enough, and the voters must know each other's addresses up front.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return out
}

// startNetCluster starts n voters (raft ids 1..n) and returns them with the voter address map.
func startNetCluster(t *testing.T, n int, tweak func(*Config)) ([]*netMember, map[uint64]string) {
	t.Helper()
	addrs := freeAddrs(t, n)
	voters := map[uint64]string{}
	var ids []uint64
	for i := range n {
		voters[uint64(i+1)] = addrs[i]
		ids = append(ids, uint64(i+1))
	}
	base := t.TempDir()
	var ms []*netMember
	for _, id := range ids {
		peers := map[uint64]string{}
		for pid, a := range voters {
			if pid != id {
				peers[pid] = a
			}
		}
		nt, err := ListenNet(NetConfig{Listen: voters[id], Peers: peers, Logger: testSlog()})
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{ID: id, Peers: ids, Dir: filepath.Join(base, fmt.Sprint(id)), Transport: nt.Transport()}
		if tweak != nil {
			tweak(&cfg)
		}
		nd, _, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nt.Attach(nd)
		ctx, cancel := context.WithCancel(context.Background())
		m := &netMember{id: id, addr: voters[id], net: nt, node: nd, cancel: cancel, ran: make(chan struct{})}
		go func() {
			defer close(m.ran)
			_ = nd.Run(ctx, netTick)
		}()
		ms = append(ms, m)
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.kill()
		}
	})
	return ms, voters
}

// kill stops a member as a crash would look to the others: its listener and connections vanish.
func (m *netMember) kill() {
	m.cancel()
	<-m.ran
	_ = m.net.Close()
	m.node.Stop()
}

// waitFor polls cond every 10 ms until it holds, failing after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// activeMember waits until one of ms is the active controller and returns it.
func activeMember(t *testing.T, ms []*netMember) *netMember {
	t.Helper()
	var found *netMember
	waitFor(t, 10*time.Second, "an active controller", func() bool {
		for _, m := range ms {
			if _, _, active := m.node.Status(); active {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// registerLive registers broker id through cl and heartbeats until it is unfenced; it returns the epoch.
func registerLive(t *testing.T, cl *Client, id int32) int64 {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	epoch, err := cl.RegisterBroker(ctx, RegisterBroker{ID: id, Incarnation: fmt.Sprint("inc-", id),
		Listeners: []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092 + id}}})
	if err != nil {
		t.Fatalf("register %d: %v", id, err)
	}
	waitFor(t, 5*time.Second, fmt.Sprint("broker ", id, " unfenced"), func() bool {
		rep, err := cl.Heartbeat(ctx, HeartbeatRequest{BrokerID: id, BrokerEpoch: epoch, MetadataOffset: 1 << 40})
		if err != nil {
			t.Fatalf("heartbeat %d: %v", id, err)
		}
		return !rep.Fenced
	})
	return epoch
}

func snapshotBytes(t *testing.T, n *Node) []byte {
	t.Helper()
	var b []byte
	n.Read(func(s *State) {
		var err error
		if b, err = s.MarshalSnapshot(); err != nil {
			t.Fatal(err)
		}
	})
	return b
}
