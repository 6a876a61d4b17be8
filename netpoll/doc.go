// Package netpoll is sluice's network front door: a gnet/v2 engine that
// frames Kafka requests, parses request headers, hands each request to a
// Handler, and writes responses back in request order. It knows nothing about
// what the APIs mean; the node package implements Handler.
//
// # Wire format
//
// A request is an int32 big-endian size followed by that many bytes. A size
// that is negative or above Config.MaxFrameSize (Kafka's
// socket.request.max.bytes, 100 MiB by default) closes the connection and is
// logged with the remote address and the claimed size; the server stays up.
// The request header is v1 (api_key, api_version, correlation_id, nullable
// client_id) or, when kmsg says the API version is flexible, v2 (v1 plus
// tagged fields, which are skipped). ControlledShutdown v0 uses header v0
// (no client_id). A malformed header closes the connection. Responses get a
// size prefix and response header v0 (correlation id) or, for flexible
// versions, v1 (plus an empty tag buffer), except ApiVersions, which always
// answers with v0 so that clients can read it whatever version they tried.
//
// # Ownership and goroutines
//
// gnet runs one event loop per core (Config.Loops); each connection lives on
// one loop. Everything a connection does on the network happens on its
// loop's goroutine: reading, parsing, calling Handler.Serve, and writing.
// Handler.Serve runs on the loop and must not block. Answers
// (Request.Respond, Request.NoResponse) may come from any goroutine: they
// store the parts in the Request, then wake the loop with gnet's Conn.Wake,
// which queues a task on the loop's lock-free queue and runs OnTraffic for the
// connection. Wakes are coalesced per connection (Conn.wakeArmed), and an
// answer given while the loop is already working on that connection (for
// example a synchronous answer inside Serve) needs no wake at all.
//
// The request bytes are copied once, from gnet's read buffer into a pooled
// buffer sized by the frame's prefix, as they arrive; Request.Body points into
// it. The buffer returns to the pool after the response has been written, so
// response parts may alias Body, but the handler must not use Body after
// answering.
//
// With Config.OnLoopStart set, every loop is locked to its OS thread and
// runs the hook once on it, before serving its first connection; Start
// reaches every loop with warm-up connections to itself that are closed
// unseen (pin.go). The node pins loop threads to CPUs this way.
//
// # Writing
//
// netpoll writes responses itself, on the loop, straight to the socket:
// writev for byte parts (several responses per call), sendfile(2) for file
// ranges. gnet's outbound buffer is never used, so nothing gnet holds can
// overtake or be overtaken by a file range, and netpoll always knows how many
// response bytes reached the kernel. The per-connection queue is the list of
// requests in arrival order; only the head can be written, so an early answer
// to a later request waits.
//
// When the socket is full (EAGAIN, or a short write) the loop does not spin
// and does not fall back to buffering: it registers the socket with the
// Server's writability watcher (its own epoll instance, one goroutine per
// Server; gnet v2.9.4 has no writability callback) and moves on. When the
// socket drains, the watcher wakes the connection and writing resumes exactly
// where it stopped, in the middle of a header, byte part or file range. A
// connection writes at most Config.WriteBudget bytes per turn, then requeues
// itself behind the loop's other work.
//
// File ranges: sendfile from the file's descriptor to the socket. A File
// without a descriptor (Fd() == ^uintptr(0), like vfs.MemFS files), a file
// system that refuses sendfile (EINVAL/ENOSYS/EOPNOTSUPP), or
// Config.CopyFileRanges (for TLS later) uses the copy path instead: pread
// 256 KiB into a pooled buffer, write it, keep the unwritten rest across
// EAGAIN. A file shorter than the promised range closes the connection: the
// size prefix has already gone out. Limit: both paths read the file on the
// loop goroutine, so a range that is not in the page cache blocks that loop
// for the disk read. The node should hand ranges it believes cold to a reader
// goroutine and respond with bytes.
//
// # Backpressure
//
// A connection stops starting new requests while MaxInFlightRequests of its
// requests are in flight or their frames add up to MaxInFlightBytes (one is
// always admitted when none is in flight). A request is in flight from the
// moment its size prefix is read until its response has been handed to the
// kernel (or it was answered with NoResponse and reached the head), so a
// client that does not read its responses is throttled as well as a slow
// handler. It resumes as soon as responses drain.
//
// What gnet v2.9.4 allows: it exposes no way to stop reading a socket (its
// poller is private, and its write path re-registers interest on its own).
// So pausing means netpoll leaves bytes in gnet's inbound buffer, and gnet
// keeps reading the socket into that buffer as data arrives: TCP flow control
// does not reach the client. A well-behaved Kafka client bounds its own
// in-flight requests (5 by default), so this stays small; a client that keeps
// sending while paused is disconnected once the buffer exceeds
// Config.MaxBufferedInbound. Real socket-level backpressure would need gnet to
// let us drop EPOLLIN, or netpoll to take the socket out of gnet.
//
// # Shutdown
//
// Server.Stop marks every connection closing: it stops reading requests,
// finishes and writes what it has in flight, then closes. New connections are
// closed as soon as gnet accepts them (gnet cannot close its listener without
// stopping the engine). When all connections are gone, or Stop's context
// ends, the engine is stopped, which closes whatever is left. Conn.Close does
// the same for one connection.
//
// # Locks
//
// There are three mutexes and none is held while taking another, except as
// listed: Server.mu (connection registry, stopping flag) is taken alone;
// Conn.mu (closed flag, answer hand-off) is held while calling gnet's
// Conn.Wake, which takes no lock of ours; watcher.mu (id -> Conn map) is
// released before the watcher kicks a connection (which takes Conn.mu). So the
// order is watcher.mu, then (released) Conn.mu; nothing takes Server.mu
// while holding another. Release callbacks and Handler methods run with no
// netpoll lock held.
package netpoll
