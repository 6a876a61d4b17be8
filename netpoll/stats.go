package netpoll

import "sync/atomic"

// Stats is a snapshot of a Server's counters, for the node to publish (e.g.
// with VictoriaMetrics/metrics gauges reading Server.Stats).
type Stats struct {
	BytesIn          uint64 // request bytes consumed, size prefixes included
	BytesOut         uint64 // response bytes handed to the kernel
	ConnsOpen        int64  // connections currently open
	ConnsAccepted    uint64 // connections ever opened
	ConnsBadInput    uint64 // connections closed for oversized/malformed input
	Requests         uint64 // requests dispatched to the Handler
	Responses        uint64 // responses fully written
	RequestsInFlight int64  // from size prefix read to response handed to the kernel
	SendfileBytes    uint64 // file-range bytes sent with sendfile
	CopiedFileBytes  uint64 // file-range bytes sent through the copy path
	WriteWaits       uint64 // times a write hit a full socket and waited for writability
}

// counters are updated with atomics from every loop. They are few and written
// once per read/write batch, so sharding them per loop is not worth it yet.
type counters struct {
	bytesIn, bytesOut   atomic.Uint64
	connsOpen           atomic.Int64
	connsAccepted       atomic.Uint64
	connsBadInput       atomic.Uint64
	requests, responses atomic.Uint64
	inFlight            atomic.Int64
	sendfileBytes       atomic.Uint64
	copiedFileBytes     atomic.Uint64
	writeWaits          atomic.Uint64
}

// Stats returns the current counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		BytesIn:          c.bytesIn.Load(),
		BytesOut:         c.bytesOut.Load(),
		ConnsOpen:        c.connsOpen.Load(),
		ConnsAccepted:    c.connsAccepted.Load(),
		ConnsBadInput:    c.connsBadInput.Load(),
		Requests:         c.requests.Load(),
		Responses:        c.responses.Load(),
		RequestsInFlight: c.inFlight.Load(),
		SendfileBytes:    c.sendfileBytes.Load(),
		CopiedFileBytes:  c.copiedFileBytes.Load(),
		WriteWaits:       c.writeWaits.Load(),
	}
}
