package ctrl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Voters map[uint64]string // raft id -> controller listener host:port, every voter
	Local  *Node             // this process's controller in combined mode, else nil
	Logger *slog.Logger      // nil: slog.Default()
}

// Client is how a broker calls the active controller. It calls Local directly (no network) while Local is
// active; otherwise it sends to the controller it believes active (Local's view of the raft leader, else the last
// NOT_CONTROLLER hint, else each voter in turn) and follows NOT_CONTROLLER answers, connection failures and lost
// leadership, retrying every 25-50 ms until ctx ends. With Local set, a call waiting on a controller is abandoned
// as soon as Local's raft leader changes and retried at once on the new one: a stopped controller answers nothing,
// and the new one gives brokers only Config.VoterSessionGrace to check in. It keeps one persistent connection per
// controller, multiplexed, so a broker's heartbeats to a controller always share one connection, whose closing
// tells that controller the broker is gone (abandoning a call leaves it open). A dial that Local's peer refuses is
// reported to Local (see failover.go). All methods are safe for concurrent use.
//
// Errors wrap the Kafka error for the code answered (errors.Is(err, kerr.X) works) with the controller's message.
// When ctx ends first, the error wraps both ctx's error and the last failure seen. A retried call whose first
// attempt was cut off by lost leadership, or abandoned when the leader changed, may have taken effect (e.g.
// CreateTopic then answers TOPIC_ALREADY_EXISTS).
type Client struct {
	log    *slog.Logger
	local  *Node
	voters map[uint64]string
	ids    []uint64 // voters sorted, for the round robin
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[uint64]*clientConn
	hint  uint64 // last NOT_CONTROLLER leader hint
	rr    int    // round-robin position in ids
}

// ErrClientClosed is returned by calls on a closed Client.
var ErrClientClosed = errors.New("ctrl: controller client closed")

// errControllerMoved: an attempt was abandoned because Local's raft leader changed; retried without a pause.
var errControllerMoved = errors.New("ctrl: the raft leader changed while waiting for the controller")

// NewClient returns a Client; it connects lazily.
func NewClient(cfg ClientConfig) *Client {
	c := &Client{log: cfg.Logger, local: cfg.Local, voters: cfg.Voters, conns: map[uint64]*clientConn{}}
	if c.log == nil {
		c.log = slog.Default()
	}
	for id := range cfg.Voters {
		c.ids = append(c.ids, id)
	}
	slices.Sort(c.ids)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Close closes every connection (the controllers then treat the brokers heartbeating over them as gone) and
// makes calls fail with ErrClientClosed. Safe for concurrent use.
func (c *Client) Close() {
	c.cancel()
	c.mu.Lock()
	conns := c.conns
	c.conns = map[uint64]*clientConn{}
	c.mu.Unlock()
	for _, cc := range conns {
		cc.fail(ErrClientClosed)
	}
}

// localCall runs one Node operation: start issues it with a completion callback. It returns the synchronous or
// the callback's error, or ctx's.
type localCall func(done func(error)) error

// call runs method on the active controller, retrying as the Client's doc says. local (nil: never local) runs it
// on Local; remote results are decoded into resp.
func (c *Client) call(ctx context.Context, method string, req, resp any, local localCall) error {
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !errors.Is(last, errControllerMoved) {
			t := time.NewTimer(25*time.Millisecond + rand.N(25*time.Millisecond))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return c.giveUp(ctx.Err(), last)
			case <-c.ctx.Done():
				t.Stop()
				return ErrClientClosed
			}
		}
		if c.ctx.Err() != nil {
			return ErrClientClosed
		}
		if ctx.Err() != nil {
			return c.giveUp(ctx.Err(), last)
		}
		if c.local != nil && local != nil {
			if _, _, active := c.local.Status(); active {
				err := c.runLocal(ctx, local)
				if err == nil || !retryable(err) {
					return err
				}
				last = err
				continue
			}
		}
		var moved <-chan struct{} // before target: a change after choosing it must abandon the attempt
		if c.local != nil {
			moved = c.local.leaderMoved()
		}
		target := c.target()
		if target == 0 {
			last = errors.New("ctrl: no controller voters configured")
			continue
		}
		err := c.callRemote(ctx, moved, target, method, req, resp)
		if err == nil {
			return nil
		}
		if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return c.giveUp(err, last)
		}
		if !retryable(err) {
			return err
		}
		last = err
	}
}

func (c *Client) giveUp(ctxErr, last error) error {
	if last == nil {
		return ctxErr
	}
	return fmt.Errorf("%w (last error: %w)", ctxErr, last)
}

// retryable: another controller (or this one, later) may succeed.
func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) || errors.Is(err, kerr.NotController) ||
		errors.Is(err, errControllerMoved) || isConnErr(err)
}

func (c *Client) runLocal(ctx context.Context, local localCall) error {
	ch := make(chan error, 1)
	if err := local(func(err error) { ch <- err }); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err() // the operation may still complete; nobody waits for it
	}
}

// target picks the controller to send to: the leader as Local sees it, else the last hint, else the next voter.
func (c *Client) target() uint64 {
	if c.local != nil {
		if id := c.local.LeaderID(); id != 0 && c.voters[id] != "" {
			return id
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hint != 0 && c.voters[c.hint] != "" {
		return c.hint
	}
	if len(c.ids) == 0 {
		return 0
	}
	c.rr = (c.rr + 1) % len(c.ids)
	return c.ids[c.rr]
}

// callRemote makes one attempt on controller id (attempt), given up with errControllerMoved when moved (nil:
// never) closes first.
func (c *Client) callRemote(ctx context.Context, moved <-chan struct{}, id uint64, method string, req, resp any) error {
	if moved == nil {
		return c.attempt(ctx, id, method, req, resp)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil) // also ends the watcher
	go func() {
		select {
		case <-moved:
			cancel(errControllerMoved)
		case <-actx.Done():
		}
	}()
	err := c.attempt(actx, id, method, req, resp)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errControllerMoved) {
		return errControllerMoved
	}
	return err
}

// attempt sends one call to controller id, learning the leader hint from a NOT_CONTROLLER answer.
func (c *Client) attempt(ctx context.Context, id uint64, method string, req, resp any) error {
	cc, err := c.conn(ctx, id)
	if err != nil {
		c.forgetHint(id)
		return err
	}
	r, err := cc.roundTrip(ctx, method, req)
	if err != nil {
		if isConnErr(err) {
			c.forgetHint(id)
		}
		return err
	}
	if r.Code != 0 {
		if r.Code == kerr.NotController.Code {
			c.mu.Lock()
			c.hint = r.Leader // 0: unknown, so the round robin goes on
			c.mu.Unlock()
		}
		return fmt.Errorf("%w: %s", kerr.ErrorForCode(r.Code), r.Msg)
	}
	if resp != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, resp); err != nil {
			return fmt.Errorf("ctrl: decode %s answer from controller %d: %w", method, id, err)
		}
	}
	return nil
}

func (c *Client) forgetHint(id uint64) {
	c.mu.Lock()
	if c.hint == id {
		c.hint = 0
	}
	c.mu.Unlock()
}

// conn returns the live connection to controller id, dialing if there is none.
func (c *Client) conn(ctx context.Context, id uint64) (*clientConn, error) {
	c.mu.Lock()
	cc := c.conns[id]
	c.mu.Unlock()
	if cc != nil && !cc.broken() {
		return cc, nil
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", c.voters[id])
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if c.local != nil && errors.Is(err, syscall.ECONNREFUSED) {
			c.local.voterRefused(id)
		}
		return nil, errConn{fmt.Errorf("dial controller %d at %s: %w", id, c.voters[id], err)}
	}
	if c.local != nil {
		c.local.voterReached(id)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		_ = nc.Close()
		return nil, ErrClientClosed
	}
	if cur := c.conns[id]; cur != nil && !cur.broken() {
		_ = nc.Close() // lost a dial race; this one carried nothing yet
		return cur, nil
	}
	cc = newClientConn(nc)
	c.conns[id] = cc
	return cc, nil
}
