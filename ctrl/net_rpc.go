package ctrl

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3/raftpb"
)

// The RPC server side of an inbound connection: the reader decodes frames and dispatches requests (net_ops.go);
// answers, often produced later by Node callbacks on the Process goroutine, are queued to a writer goroutine.

// maxInflight bounds the requests of one connection that are not answered yet. The reader waits for a slot, so a
// client pipelining without bound is slowed down, never the Node, and the answer queue never fills.
const maxInflight = 1024

// writeTimeout bounds one write to a peer or client; a connection that cannot take data for that long is dead.
const writeTimeout = 10 * time.Second

type srvConn struct {
	t     *Net
	c     net.Conn
	out   chan []byte   // answer frames; capacity maxInflight
	slots chan struct{} // one per request not answered (and written) yet
	done  chan struct{} // closed when the connection ends
	once  sync.Once

	mu      sync.Mutex
	brokers map[int32]int64 // broker id -> epoch whose heartbeats this connection carries
}

func newSrvConn(t *Net, c net.Conn) *srvConn {
	return &srvConn{t: t, c: c, out: make(chan []byte, maxInflight), slots: make(chan struct{}, maxInflight),
		done: make(chan struct{}), brokers: map[int32]int64{}}
}

func (sc *srvConn) readLoop() error {
	br := bufio.NewReaderSize(sc.c, 64<<10)
	for {
		kind, body, err := readFrame(br)
		if err != nil {
			return err
		}
		switch kind {
		case frameRaft:
			var m raftpb.Message
			if err := m.Unmarshal(body); err != nil {
				return badInput{fmt.Errorf("raft message: %w", err)}
			}
			sc.t.stepInbound(m)
		case frameRequest:
			var req rpcRequest
			corr, err := parseRPC(body, &req)
			if err != nil {
				return err
			}
			select {
			case sc.slots <- struct{}{}:
			case <-sc.done:
				return net.ErrClosed
			}
			sc.dispatch(corr, req)
		default:
			return badInput{fmt.Errorf("frame kind %d is not sent to a controller", kind)}
		}
	}
}

// writeLoop writes answers, batching what is queued, until the connection ends.
func (sc *srvConn) writeLoop() {
	defer sc.t.wg.Done()
	bw := bufio.NewWriterSize(sc.c, 64<<10)
	for {
		var f []byte
		select {
		case f = <-sc.out:
		case <-sc.done:
			return
		}
		_ = sc.c.SetWriteDeadline(time.Now().Add(writeTimeout))
		n := 1
		_, err := bw.Write(f)
		for more := true; more && err == nil; {
			select {
			case f = <-sc.out:
				n++
				_, err = bw.Write(f)
			default:
				more = false
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		for ; n > 0; n-- {
			<-sc.slots
		}
		if err != nil {
			sc.t.log.Debug("ctrl: controller connection write failed", "remote", sc.c.RemoteAddr().String(), "err", err)
			sc.close()
			return
		}
	}
}

// reply queues the answer to request corr: v as the body on success, else err's Kafka code. It never blocks and
// may be called from any goroutine, once per request.
func (sc *srvConn) reply(corr uint64, v any, err error) {
	var resp rpcResponse
	if err != nil {
		resp.Code, resp.Leader = sc.errorCode(err)
		resp.Msg = err.Error()
	} else if b, merr := json.Marshal(v); merr != nil {
		resp.Code, resp.Msg = kerr.UnknownServerError.Code, fmt.Sprintf("encode answer: %v", merr)
	} else {
		resp.Body = b
	}
	f, ferr := rpcFrame(frameResponse, corr, resp)
	if ferr != nil {
		resp = rpcResponse{Code: kerr.UnknownServerError.Code, Msg: ferr.Error()}
		f, _ = rpcFrame(frameResponse, corr, resp)
	}
	select {
	case sc.out <- f: // a slot was taken for this request, so there is room
	case <-sc.done:
	}
}

// errorCode maps a Node error to the Kafka code to answer with. Anything meaning "not the active controller
// (any more)" becomes NOT_CONTROLLER with the leader hint, so clients retry there.
func (sc *srvConn) errorCode(err error) (int16, uint64) {
	n := sc.t.node.Load()
	notCtrl := errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrStopped)
	if n != nil && !notCtrl {
		notCtrl = n.failed() // a storage failure stopped it: another voter must take over
	}
	if notCtrl {
		var hint uint64
		if n != nil {
			hint = n.LeaderID()
		}
		return kerr.NotController.Code, hint
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code, 0
	}
	return kerr.UnknownServerError.Code, 0
}

// mark records that this connection carries broker id's heartbeats at epoch; unmark forgets it. Net counts the
// open connections carrying each broker, so a broker that reconnected (its new connection heartbeating before
// the old one's close is noticed) is not reported gone.
func (sc *srvConn) mark(id int32, epoch int64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	old, had := sc.brokers[id]
	if had && old == epoch {
		return
	}
	sc.brokers[id] = epoch
	t := sc.t
	t.mu.Lock()
	if had {
		t.uncarry(id, old)
	}
	t.carriers[brokerAt{id, epoch}]++
	t.mu.Unlock()
}

func (sc *srvConn) unmark(id int32) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if e, had := sc.brokers[id]; had {
		delete(sc.brokers, id)
		sc.t.mu.Lock()
		sc.t.uncarry(id, e)
		sc.t.mu.Unlock()
	}
}

// brokerAt is a broker incarnation: id and broker epoch.
type brokerAt struct {
	id    int32
	epoch int64
}

// uncarry drops one carrier of broker id at epoch and reports whether none is left. Runs under t.mu.
func (t *Net) uncarry(id int32, epoch int64) bool {
	k := brokerAt{id, epoch}
	if t.carriers[k]--; t.carriers[k] <= 0 {
		delete(t.carriers, k)
		return true
	}
	return false
}

func (sc *srvConn) close() {
	sc.once.Do(func() {
		close(sc.done)
		sc.t.untrack(sc.c)
	})
}

// finish ends the connection and, unless the listener itself is closing, reports every broker it carried, and
// no other open connection does, as disconnected: the broker process (or its host) is gone, or at least its link
// to this controller is.
func (sc *srvConn) finish() {
	sc.close()
	sc.mu.Lock()
	bs := sc.brokers
	sc.brokers = map[int32]int64{}
	var gone []brokerAt
	sc.t.mu.Lock()
	for id, epoch := range bs {
		if sc.t.uncarry(id, epoch) {
			gone = append(gone, brokerAt{id, epoch})
		}
	}
	sc.t.mu.Unlock()
	sc.mu.Unlock()
	n := sc.t.node.Load()
	if n == nil || sc.t.closing() {
		return
	}
	for _, b := range gone {
		n.BrokerDisconnected(b.id, b.epoch)
	}
}
