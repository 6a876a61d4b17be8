package node

import (
	"sync"
	"time"

	"github.com/sluicemq/sluice/netpoll"
)

// gate holds client requests back while a (re)starting broker's metadata
// is only what its own log replay gave it (stale leaders and ISRs), as a
// Kafka broker does not process requests before its initial metadata
// catch-up. Held requests are served in arrival order once the metadata
// reaches the broker's registration, or after gateMaxWait whatever the
// state (a broker cut off from its controllers still answers). Closing the
// connection instead would make clients fail the request outright.
//
// Concurrency: admit is called from event loops; open from the metadata
// goroutine; both are safe for concurrent use.
type gate struct {
	mu      sync.Mutex
	open    bool
	held    []*netpoll.Request
	started bool
	serve   func(*netpoll.Request)
	opened  chan struct{}
}

const gateMaxWait = 30 * time.Second

func newGate(serve func(*netpoll.Request)) *gate {
	return &gate{serve: serve, opened: make(chan struct{})}
}

// admit reports whether req may be served now; if not, the gate keeps it.
func (g *gate) admit(req *netpoll.Request) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return true
	}
	g.held = append(g.held, req)
	if !g.started {
		g.started = true
		go g.drain()
	}
	return false
}

// release opens the gate (idempotent).
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.opened:
	default:
		close(g.opened)
	}
}

// drain serves held requests in order once the gate opens (or the wait
// ends), then lets new requests through.
func (g *gate) drain() {
	t := time.NewTimer(gateMaxWait)
	defer t.Stop()
	select {
	case <-g.opened:
	case <-t.C:
	}
	for {
		g.mu.Lock()
		if len(g.held) == 0 {
			g.open = true
			g.mu.Unlock()
			return
		}
		req := g.held[0]
		g.held[0] = nil
		g.held = g.held[1:]
		g.mu.Unlock()
		g.serve(req)
	}
}
