package netpoll

import (
	"log/slog"
	"runtime"
)

// Config tunes a Server. The zero value is usable: every zero field takes the
// default documented on it.
type Config struct {
	// MaxFrameSize is the largest request accepted, as Kafka's
	// socket.request.max.bytes. A larger (or negative) size prefix closes
	// the connection. Default DefaultMaxFrameSize (100 MiB).
	MaxFrameSize int32
	// MaxInFlightRequests pauses reading a connection while this many of
	// its requests are read but not yet fully answered on the wire.
	// Default 100.
	MaxInFlightRequests int
	// MaxInFlightBytes pauses reading a connection while the frames of its
	// in-flight requests add up to this many bytes. One request is always
	// admitted when none is in flight, so a frame larger than this still
	// gets through. Default 64 MiB.
	MaxInFlightBytes int64
	// MaxBufferedInbound closes a paused connection whose unread bytes in
	// gnet's inbound buffer exceed it (gnet keeps reading the socket while
	// netpoll is paused; see doc.go). Default MaxFrameSize + 16 MiB.
	MaxBufferedInbound int
	// Loops is the number of event loops. Default runtime.NumCPU().
	Loops int
	// ReadBufferSize is gnet's per-loop socket read buffer. Default 64 KiB.
	ReadBufferSize int
	// WriteBudget is how many bytes one connection may write per turn of
	// its event loop before it yields to the others. Default 4 MiB.
	WriteBudget int64
	// CopyFileRanges writes file ranges with pread+write instead of
	// sendfile: the path TLS will need. Default false (sendfile).
	CopyFileRanges bool
	// Logger receives bad-input reports and gnet's own log lines. Default
	// slog.Default().
	Logger *slog.Logger
	// OnLoopStart, if set, locks every event loop to its OS thread (gnet's
	// WithLockOSThread) and is called once per loop, on that loop's
	// goroutine, with the loop's number (0..Loops-1, in order of first
	// use), before the loop serves its first connection. Start makes every
	// loop run it before returning (pin.go); a loop it misses runs it at its
	// first client. The node pins the thread to a CPU here. It must not
	// block for long: the loop waits.
	OnLoopStart func(loop int)
}

func (c Config) withDefaults() Config {
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxInFlightRequests <= 0 {
		c.MaxInFlightRequests = 100
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = 64 << 20
	}
	if c.MaxBufferedInbound <= 0 {
		c.MaxBufferedInbound = int(c.MaxFrameSize) + 16<<20
	}
	if c.Loops <= 0 {
		c.Loops = runtime.NumCPU()
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = 64 << 10
	}
	if c.WriteBudget <= 0 {
		c.WriteBudget = 4 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
