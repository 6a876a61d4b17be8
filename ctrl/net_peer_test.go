package ctrl

import (
	"bufio"
	"net"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// A peer that closed our connection while we had nothing to send it (it restarted; we are a follower, who talks
// only to the leader) must get the next message on a new connection, not lose it to the closed one: that message
// is typically a vote request, and losing it costs a whole election timeout.
func TestNetPeerRedialsAfterPeerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type got struct {
		conn  int
		index uint64
	}
	recv := make(chan got, 16)
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					kind, body, err := readFrame(br)
					if err != nil || kind != frameRaft {
						return
					}
					var m raftpb.Message
					if err := m.Unmarshal(body); err != nil {
						t.Errorf("peer: bad raft message: %v", err)
						return
					}
					recv <- got{i, m.Index}
					if i == 0 {
						return // the first connection dies after one message
					}
				}
			}()
		}
	}()
	nt, err := ListenNet(NetConfig{Listen: "127.0.0.1:0", Peers: map[uint64]string{2: ln.Addr().String()}, Logger: testSlog()})
	if err != nil {
		t.Fatal(err)
	}
	defer nt.Close()
	send := func(index uint64) got {
		t.Helper()
		nt.Transport().Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Index: index}})
		select {
		case g := <-recv:
			return g
		case <-time.After(2 * time.Second):
			t.Fatalf("message %d never reached the peer", index)
			return got{}
		}
	}
	if g := send(1); g != (got{0, 1}) {
		t.Fatalf("first message: %+v", g)
	}
	time.Sleep(100 * time.Millisecond) // the peer's close has reached us: nothing was sent meanwhile
	if g := send(2); g != (got{1, 2}) {
		t.Fatalf("message after the peer closed the connection: %+v, want it on a second connection", g)
	}
}
