package ctrl

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The reassignment and unregistration RPCs (see the method table in net_ops.go): their bodies, the server side
// and the Client's methods. Like those of net_client_ops.go, each Client method runs on Local while it is active,
// else over the network, is safe for concurrent use and blocks until answered or ctx ends.

type rpcAlterReassignments struct {
	Targets       []ReassignTarget `json:"targets"` // a target's null replicas cancel
	AllowRFChange bool             `json:"allowRfChange"`
}

type rpcListReassignments struct {
	Parts map[string][]int32 `json:"parts"` // null: every partition
}

type rpcReassignments struct {
	List []Reassignment `json:"list"`
}

type rpcBroker struct {
	ID int32 `json:"id"`
}

// dispatchReassign serves the three methods; like dispatch it never blocks the reader.
func (sc *srvConn) dispatchReassign(n *Node, corr uint64, req rpcRequest) {
	decode := func(v any) bool {
		if err := json.Unmarshal(req.Body, v); err != nil {
			sc.reply(corr, nil, fmt.Errorf("%w: %s body: %v", kerr.InvalidRequest, req.Method, err))
			return false
		}
		return true
	}
	var err error
	switch req.Method {
	case "AlterReassignments":
		var r rpcAlterReassignments
		if !decode(&r) {
			return
		}
		err = n.AlterReassignments(r.Targets, r.AllowRFChange, func(res map[string]map[int32]error) {
			sc.reply(corr, encodeElect(res), nil)
		})
	case "ListReassignments":
		var r rpcListReassignments
		if !decode(&r) {
			return
		}
		list, lerr := n.ListReassignments(r.Parts)
		sc.reply(corr, rpcReassignments{List: list}, lerr)
		return
	case "UnregisterBroker":
		var r rpcBroker
		if !decode(&r) {
			return
		}
		err = n.UnregisterBroker(r.ID, func(err error) { sc.reply(corr, nil, err) })
	}
	if err != nil {
		sc.reply(corr, nil, err)
	}
}

// AlterReassignments sets target replicas per partition (nil Replicas: cancel); the result holds one error per
// named partition (nil: done or under way); see Node.AlterReassignments.
func (c *Client) AlterReassignments(ctx context.Context, targets []ReassignTarget, allowRFChange bool) (map[string]map[int32]error, error) {
	var res map[string]map[int32]error
	var resp rpcElectResults
	req := rpcAlterReassignments{Targets: targets, AllowRFChange: allowRFChange}
	err := c.call(ctx, "AlterReassignments", req, &resp, func(done func(error)) error {
		return c.local.AlterReassignments(targets, allowRFChange, func(r map[string]map[int32]error) { res = r; done(nil) })
	})
	if err != nil {
		return nil, err
	}
	if res != nil { // answered by Local
		return res, nil
	}
	return resp.decode(), nil
}

// ListReassignments returns the active controller's reassignments in progress (parts nil: all).
func (c *Client) ListReassignments(ctx context.Context, parts map[string][]int32) ([]Reassignment, error) {
	var resp rpcReassignments
	err := c.call(ctx, "ListReassignments", rpcListReassignments{Parts: parts}, &resp, func(done func(error)) error {
		list, err := c.local.ListReassignments(parts)
		if err == nil {
			resp.List = list
			done(nil)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.List, nil
}

// UnregisterBroker removes a fenced broker that holds no replica; see Node.UnregisterBroker.
func (c *Client) UnregisterBroker(ctx context.Context, id int32) error {
	return c.call(ctx, "UnregisterBroker", rpcBroker{ID: id}, nil, func(done func(error)) error {
		return c.local.UnregisterBroker(id, done)
	})
}
