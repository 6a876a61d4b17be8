package node

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cutProxy relays Kafka connections to a broker. For the Produce requests
// cut picks it forwards the request, waits for the broker's answer — the
// batches are written — and then closes both connections instead of relaying
// it: the client cannot know its batches were written and sends them again.
// The broker advertises the proxy, so every connection of the client goes
// through it.
type cutProxy struct {
	ln      net.Listener
	backend atomic.Pointer[string]
	// cut says whether the n-th Produce request (from 1) loses its answer.
	cut func(n int32) bool
	// onCut, if set, runs after the broker answered a cut request and before
	// the client's connection closes, so nothing the client does can come
	// between (the restart test restarts the broker here).
	onCut func()

	produces, cuts atomic.Int32

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, cut func(n int32) bool) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, cut: cut, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string           { return p.ln.Addr().String() }
func (p *cutProxy) setBackend(addr string) { p.backend.Store(&addr) }

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *cutProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	if !p.track(client) {
		return
	}
	broker, err := net.DialTimeout("tcp", *p.backend.Load(), 5*time.Second)
	if err != nil {
		return
	}
	defer broker.Close()
	if !p.track(broker) {
		return
	}
	// Answers come in request order: the queue says which one to cut. Every
	// request the clients here send is answered (acks=all).
	queue := make(chan bool, 4096)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer broker.Close()
		defer client.Close()
		for {
			frame, err := readKafkaFrame(client)
			if err != nil {
				return
			}
			cut := false
			if key := int16(binary.BigEndian.Uint16(frame[4:])); key == 0 {
				cut = p.cut(p.produces.Add(1))
			}
			queue <- cut
			if _, err := broker.Write(frame); err != nil {
				return
			}
		}
	}()
	for {
		frame, err := readKafkaFrame(broker)
		if err != nil {
			return
		}
		if <-queue {
			p.cuts.Add(1)
			if p.onCut != nil {
				p.onCut()
			}
			return
		}
		if _, err := client.Write(frame); err != nil {
			return
		}
	}
}

// readKafkaFrame reads one size-prefixed frame, prefix included.
func readKafkaFrame(c net.Conn) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	_, err := io.ReadFull(c, frame[4:])
	return frame, err
}
