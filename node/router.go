package node

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/netpoll"
)

// apiDef is one Kafka API this broker serves.
type apiDef struct {
	key      int16
	min, max int16
	// handle serves a decoded request on the event loop; it must not block
	// (use c.async for disk work) and must answer c exactly once.
	handle func(n *Node, c *call)
}

const maxAPIKey = 127

var apis [maxAPIKey + 1]*apiDef

// registerAPI is called from each api_NN file's init.
func registerAPI(d *apiDef) {
	if apis[d.key] != nil {
		panic("node: BUG: API registered twice")
	}
	apis[d.key] = d
}

// call is one request being served.
type call struct {
	n     *Node
	req   *netpoll.Request
	kreq  kmsg.Request
	m     *apiMetrics
	start time.Time
}

// Serve implements netpoll.Handler: it runs on the connection's event loop.
//
// Requests for an API key this broker does not serve, or a version outside
// its range, close the connection with a log line, as Kafka does (there is no
// response schema to answer an unknown key with). The exception is
// ApiVersions, which answers an unsupported version with a v0 response
// carrying UNSUPPORTED_VERSION and the supported ranges, so clients can
// negotiate.
func (n *Node) Serve(req *netpoll.Request) {
	var def *apiDef
	if req.Key >= 0 && int(req.Key) < len(apis) {
		def = apis[req.Key]
	}
	if def == nil {
		n.reject(req, "unknown or unsupported API key")
		return
	}
	if req.Version < def.min || req.Version > def.max {
		if req.Key == apiVersionsKey {
			n.answerApiVersionsFallback(req)
			return
		}
		n.reject(req, "unsupported API version")
		return
	}
	if c := n.cluster; c != nil && req.Key != apiVersionsKey && !c.gate.admit(req) {
		return // held until the metadata caught up (cluster_gate.go)
	}
	n.serveAdmitted(req)
}

// serveAdmitted decodes and dispatches a request that passed the gate.
func (n *Node) serveAdmitted(req *netpoll.Request) {
	def := apis[req.Key]
	kr := kmsg.RequestForKey(req.Key)
	kr.SetVersion(req.Version)
	if err := kr.ReadFrom(req.Body); err != nil {
		n.m.badRequests.Inc()
		n.reject(req, "malformed request body: "+err.Error())
		return
	}
	am := n.m.api[req.Key]
	am.requests.Inc()
	n.m.bytesIn.Add(len(req.Body))
	c := &call{n: n, req: req, kreq: kr, m: am, start: time.Now()}
	def.handle(n, c)
}

func (n *Node) reject(req *netpoll.Request, why string) {
	n.m.rejected.Inc()
	n.log.Warn("closing connection: bad request", "remote", req.RemoteAddr(), "why", why,
		"api_key", req.Key, "api_version", req.Version, "correlation_id", req.CorrelationID)
	req.NoResponse()
	req.Conn.Close()
}

// async runs fn on its own goroutine: for handlers that do disk I/O. Close
// waits for these.
func (c *call) async(fn func()) {
	c.n.async.Add(1)
	go func() {
		defer c.n.async.Done()
		fn()
	}()
}

var respBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// respond encodes resp at the request's version and answers. Safe from any
// goroutine; call once.
func (c *call) respond(resp kmsg.Response) {
	resp.SetVersion(c.req.Version)
	bp := respBufs.Get().(*[]byte)
	*bp = resp.AppendTo((*bp)[:0])
	c.finish(len(*bp))
	c.req.Respond(netpoll.Bytes(*bp).WithRelease(func() {
		if cap(*bp) <= 1<<20 {
			respBufs.Put(bp)
		}
	}))
}

// respondParts answers with pre-framed parts (the zero-copy fetch path);
// size is their total length.
func (c *call) respondParts(size int64, parts ...netpoll.Part) {
	c.finish(int(size))
	c.req.Respond(parts...)
}

// noResponse finishes a request that gets no answer (acks=0).
func (c *call) noResponse() {
	c.finish(0)
	c.req.NoResponse()
}

func (c *call) finish(outBytes int) {
	c.m.latency.UpdateDuration(c.start)
	c.n.m.bytesOut.Add(outBytes)
}

// ConnOpened implements netpoll.ConnObserver.
func (n *Node) ConnOpened(c *netpoll.Conn) { n.m.connections.Add(1) }

// ConnClosed implements netpoll.ConnObserver: the connection's fetch
// sessions stay (clients may reuse them from a new connection, as Kafka
// allows) but its parked fetches end now.
func (n *Node) ConnClosed(c *netpoll.Conn) {
	n.m.connections.Add(-1)
	n.fetch.connClosed(c)
}
