package ctrl

import (
	"context"
	"fmt"
	"time"
)

// The Client's methods, one per controller RPC (see net_ops.go). Each runs on Local while it is active, else over
// the network; all are safe for concurrent use and block until answered or ctx ends.

// RegisterBroker registers the broker and returns its new broker epoch.
func (c *Client) RegisterBroker(ctx context.Context, r RegisterBroker) (epoch int64, err error) {
	var resp rpcEpoch
	err = c.call(ctx, "RegisterBroker", r, &resp, func(done func(error)) error {
		return c.local.RegisterBroker(r, func(e int64, err error) { resp.Epoch = e; done(err) })
	})
	if err != nil { // not resp: after ctx ended a Local callback may still write it
		return 0, err
	}
	return resp.Epoch, nil
}

// Heartbeat sends a broker heartbeat. Errors wrap BROKER_ID_NOT_REGISTERED or STALE_BROKER_EPOCH besides the
// Client's usual ones.
func (c *Client) Heartbeat(ctx context.Context, r HeartbeatRequest) (HeartbeatReply, error) {
	var resp HeartbeatReply
	err := c.call(ctx, "Heartbeat", r, &resp, func(done func(error)) error {
		rep, err := c.local.Heartbeat(r)
		resp = rep
		if err == nil {
			done(nil)
		}
		return err
	})
	if err != nil {
		return HeartbeatReply{}, err
	}
	return resp, nil
}

// AlterPartition asks for a partition's ISR change; it returns the change applied, nil when the ISR already was
// as asked.
func (c *Client) AlterPartition(ctx context.Context, r AlterPartitionRequest) (*ChangePartition, error) {
	var resp *ChangePartition
	err := c.call(ctx, "AlterPartition", r, &resp, func(done func(error)) error {
		return c.local.AlterPartition(r, func(ch *ChangePartition, err error) { resp = ch; done(err) })
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// CreateTopic creates a topic and returns its id.
func (c *Client) CreateTopic(ctx context.Context, name string, partitions, rf int, configs map[string]string) (TopicID, error) {
	var resp rpcTopicID
	req := rpcCreateTopic{Name: name, Partitions: partitions, RF: rf, Configs: configs}
	err := c.call(ctx, "CreateTopic", req, &resp, func(done func(error)) error {
		return c.local.CreateTopic(name, partitions, rf, configs, func(id TopicID, err error) { resp.ID = id; done(err) })
	})
	if err != nil {
		return TopicID{}, err
	}
	return resp.ID, nil
}

// CreateTopicAssigned creates a topic with an explicit replica assignment (assign[i]: partition i's replicas, the
// first preferred; see Node.CreateTopicAssigned) and returns its id.
func (c *Client) CreateTopicAssigned(ctx context.Context, name string, assign [][]int32, configs map[string]string) (TopicID, error) {
	var resp rpcTopicID
	rf := 0
	if len(assign) > 0 {
		rf = len(assign[0])
	}
	req := rpcCreateTopic{Name: name, Partitions: len(assign), RF: rf, Configs: configs, Assign: assign}
	err := c.call(ctx, "CreateTopic", req, &resp, func(done func(error)) error {
		return c.local.CreateTopicAssigned(name, assign, configs, func(id TopicID, err error) { resp.ID = id; done(err) })
	})
	if err != nil {
		return TopicID{}, err
	}
	return resp.ID, nil
}

// DeleteTopic deletes a topic.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	return c.call(ctx, "DeleteTopic", rpcTopic{Name: name}, nil, func(done func(error)) error {
		return c.local.DeleteTopic(name, done)
	})
}

// CreatePartitions grows a topic to total partitions.
func (c *Client) CreatePartitions(ctx context.Context, name string, total int) error {
	return c.call(ctx, "CreatePartitions", rpcCreatePartitions{Name: name, Total: total}, nil, func(done func(error)) error {
		return c.local.CreatePartitions(name, total, done)
	})
}

// CreatePartitionsAssigned grows a topic to total partitions, placing the new ones as assign says (one replica list
// per new partition; see Node.CreatePartitionsAssigned).
func (c *Client) CreatePartitionsAssigned(ctx context.Context, name string, total int, assign [][]int32) error {
	req := rpcCreatePartitions{Name: name, Total: total, Assign: assign}
	return c.call(ctx, "CreatePartitions", req, nil, func(done func(error)) error {
		return c.local.CreatePartitionsAssigned(name, total, assign, done)
	})
}

// SetConfigs replaces a topic's (resourceType 2) or broker's (4) dynamic config overrides; see Node.SetConfigs.
func (c *Client) SetConfigs(ctx context.Context, resourceType int8, name string, configs map[string]string) error {
	req := rpcSetConfigs{ResourceType: resourceType, Name: name, Configs: configs}
	return c.call(ctx, "SetConfigs", req, nil, func(done func(error)) error {
		return c.local.SetConfigs(resourceType, name, configs, done)
	})
}

// AllocateProducerIDs gets a block of count producer ids (count <= 0: the default block) and returns its first.
func (c *Client) AllocateProducerIDs(ctx context.Context, brokerID int32, count int64) (first int64, err error) {
	var resp rpcFirstPID
	err = c.call(ctx, "AllocateProducerIDs", rpcAllocatePIDs{BrokerID: brokerID, Count: count}, &resp, func(done func(error)) error {
		return c.local.AllocateProducerIDs(brokerID, count, func(f int64, err error) { resp.First = f; done(err) })
	})
	if err != nil {
		return 0, err
	}
	return resp.First, nil
}

// ElectLeaders runs a preferred (unclean false) or unclean election; parts nil means every partition. The result
// holds one error per partition (nil: elected); see Node.ElectLeaders.
func (c *Client) ElectLeaders(ctx context.Context, unclean bool, parts map[string][]int32) (map[string]map[int32]error, error) {
	var res map[string]map[int32]error
	var resp rpcElectResults
	err := c.call(ctx, "ElectLeaders", rpcElectLeaders{Unclean: unclean, Parts: parts}, &resp, func(done func(error)) error {
		return c.local.ElectLeaders(unclean, parts, func(r map[string]map[int32]error) { res = r; done(nil) })
	})
	if err != nil {
		return nil, err
	}
	if res != nil { // answered by Local
		return res, nil
	}
	return resp.decode(), nil
}

// ControlledShutdown moves the broker's leaderships away and fences it; the broker may exit once it returns nil.
func (c *Client) ControlledShutdown(ctx context.Context, brokerID int32, epoch int64) error {
	return c.call(ctx, "ControlledShutdown", rpcControlledShutdown{BrokerID: brokerID, Epoch: epoch}, nil,
		func(done func(error)) error { return c.local.ControlledShutdown(brokerID, epoch, done) })
}

// FetchMetadata returns the whole metadata state once its applied index passes afterIndex, or as it is after
// maxWait. With Local set it reads Local (any voter serves it); else it asks a voter, the active one if known.
func (c *Client) FetchMetadata(ctx context.Context, afterIndex uint64, maxWait time.Duration) (*State, error) {
	if n := c.local; n != nil {
		wctx, cancel := context.WithTimeout(ctx, maxWait)
		n.waitApplied(wctx, afterIndex)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if n.failed() {
			return nil, ErrStopped
		}
		var s *State
		n.Read(func(st *State) { s = st.Clone() })
		return s, nil
	}
	var resp rpcMetadata
	req := rpcFetchMetadata{AfterIndex: afterIndex, MaxWaitMs: int(maxWait / time.Millisecond)}
	if err := c.call(ctx, "FetchMetadata", req, &resp, nil); err != nil {
		return nil, err
	}
	s, err := UnmarshalSnapshot(append([]byte{resp.Version}, resp.State...))
	if err != nil {
		return nil, fmt.Errorf("ctrl: metadata from controller: %w", err)
	}
	if s.AppliedIndex != resp.AppliedIndex {
		return nil, fmt.Errorf("ctrl: metadata from controller: state at index %d, answer says %d", s.AppliedIndex, resp.AppliedIndex)
	}
	return s, nil
}
