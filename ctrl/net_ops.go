package ctrl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// RPC methods served by a controller voter, and their JSON bodies (shared with Client). Every method except
// FetchMetadata needs the active controller; others answer NOT_CONTROLLER with the leader hint.
//
//	method               request body            result body
//	RegisterBroker       RegisterBroker          rpcEpoch
//	Heartbeat            HeartbeatRequest        HeartbeatReply
//	AlterPartition       AlterPartitionRequest   *ChangePartition (null: the ISR already was as asked)
//	CreateTopic          rpcCreateTopic          rpcTopicID
//	DeleteTopic          rpcTopic                null
//	CreatePartitions     rpcCreatePartitions     null
//	SetConfigs           rpcSetConfigs           null
//	AllocateProducerIDs  rpcAllocatePIDs         rpcFirstPID
//	ElectLeaders         rpcElectLeaders         rpcElectResults
//	ControlledShutdown   rpcControlledShutdown   null
//	AlterReassignments   rpcAlterReassignments   rpcElectResults (per-partition errors)
//	ListReassignments    rpcListReassignments    rpcReassignments
//	UnregisterBroker     rpcBroker               null
//	FetchMetadata        rpcFetchMetadata        rpcMetadata (any voter answers)

type rpcEpoch struct {
	Epoch int64 `json:"epoch"`
}

type rpcCreateTopic struct {
	Name       string            `json:"name"`
	Partitions int               `json:"partitions"`
	RF         int               `json:"rf"`
	Configs    map[string]string `json:"configs,omitempty"`
	Assign     [][]int32         `json:"assign,omitempty"` // explicit replicas per partition (CreateTopicAssigned)
}

type rpcTopicID struct {
	ID TopicID `json:"id"`
}

type rpcTopic struct {
	Name string `json:"name"`
}

type rpcCreatePartitions struct {
	Name   string    `json:"name"`
	Total  int       `json:"total"`
	Assign [][]int32 `json:"assign,omitempty"` // the new partitions' replicas (CreatePartitionsAssigned)
}

type rpcSetConfigs struct {
	ResourceType int8              `json:"resourceType"`
	Name         string            `json:"name"`
	Configs      map[string]string `json:"configs"`
}

type rpcAllocatePIDs struct {
	BrokerID int32 `json:"brokerId"`
	Count    int64 `json:"count"`
}

type rpcFirstPID struct {
	First int64 `json:"first"`
}

type rpcElectLeaders struct {
	Unclean bool               `json:"unclean"`
	Parts   map[string][]int32 `json:"parts"` // null: every partition
}

type rpcErr struct {
	Code int16  `json:"code"`
	Msg  string `json:"msg,omitempty"`
}

type rpcElectResults struct {
	Results map[string]map[int32]rpcErr `json:"results"`
}

// decode turns the wire results back into per-partition errors.
func (r rpcElectResults) decode() map[string]map[int32]error {
	res := map[string]map[int32]error{}
	for topic, ps := range r.Results {
		for p, e := range ps {
			setPartResult(res, topic, p, fromRPCErr(e))
		}
	}
	return res
}

type rpcControlledShutdown struct {
	BrokerID int32 `json:"brokerId"`
	Epoch    int64 `json:"epoch"`
}

type rpcFetchMetadata struct {
	AfterIndex uint64 `json:"afterIndex"`
	MaxWaitMs  int    `json:"maxWaitMs"`
}

// rpcMetadata is the whole applied state: State is MarshalSnapshot's JSON without its version byte.
type rpcMetadata struct {
	AppliedIndex uint64          `json:"appliedIndex"`
	Version      byte            `json:"version"`
	State        json.RawMessage `json:"state"`
}

// maxFetchWait caps a FetchMetadata long poll.
const maxFetchWait = 5 * time.Minute

// dispatch runs one request. Handlers never block the reader: Node calls answer synchronously or through their
// callbacks, and the long poll runs on its own goroutine.
func (sc *srvConn) dispatch(corr uint64, req rpcRequest) {
	n := sc.t.node.Load()
	if n == nil {
		sc.reply(corr, nil, ErrNotLeader)
		return
	}
	decode := func(v any) bool {
		if err := json.Unmarshal(req.Body, v); err != nil {
			sc.reply(corr, nil, fmt.Errorf("%w: %s body: %v", kerr.InvalidRequest, req.Method, err))
			return false
		}
		return true
	}
	reply := func(v any, err error) { sc.reply(corr, v, err) }
	replyErr := func(err error) { sc.reply(corr, nil, err) }
	var err error // a synchronous refusal; callbacks answer the rest
	switch req.Method {
	case "RegisterBroker":
		var r RegisterBroker
		if !decode(&r) {
			return
		}
		err = n.RegisterBroker(r, func(epoch int64, err error) {
			if err == nil {
				sc.mark(r.ID, epoch)
			}
			reply(rpcEpoch{epoch}, err)
		})
	case "Heartbeat":
		var r HeartbeatRequest
		if !decode(&r) {
			return
		}
		rep, err := n.Heartbeat(r)
		if err == nil {
			sc.mark(r.BrokerID, r.BrokerEpoch)
		}
		reply(rep, err)
		return
	case "AlterPartition":
		var r AlterPartitionRequest
		if !decode(&r) {
			return
		}
		err = n.AlterPartition(r, func(c *ChangePartition, err error) { reply(c, err) })
	case "CreateTopic":
		var r rpcCreateTopic
		if !decode(&r) {
			return
		}
		done := func(id TopicID, err error) { reply(rpcTopicID{id}, err) }
		if r.Assign != nil {
			err = n.CreateTopicAssigned(r.Name, r.Assign, r.Configs, done)
		} else {
			err = n.CreateTopic(r.Name, r.Partitions, r.RF, r.Configs, done)
		}
	case "DeleteTopic":
		var r rpcTopic
		if !decode(&r) {
			return
		}
		err = n.DeleteTopic(r.Name, replyErr)
	case "CreatePartitions":
		var r rpcCreatePartitions
		if !decode(&r) {
			return
		}
		if r.Assign != nil {
			err = n.CreatePartitionsAssigned(r.Name, r.Total, r.Assign, replyErr)
		} else {
			err = n.CreatePartitions(r.Name, r.Total, replyErr)
		}
	case "SetConfigs":
		var r rpcSetConfigs
		if !decode(&r) {
			return
		}
		err = n.SetConfigs(r.ResourceType, r.Name, r.Configs, replyErr)
	case "AllocateProducerIDs":
		var r rpcAllocatePIDs
		if !decode(&r) {
			return
		}
		err = n.AllocateProducerIDs(r.BrokerID, r.Count, func(first int64, err error) { reply(rpcFirstPID{first}, err) })
	case "ElectLeaders":
		var r rpcElectLeaders
		if !decode(&r) {
			return
		}
		err = n.ElectLeaders(r.Unclean, r.Parts, func(res map[string]map[int32]error) { reply(encodeElect(res), nil) })
	case "ControlledShutdown":
		var r rpcControlledShutdown
		if !decode(&r) {
			return
		}
		sc.unmark(r.BrokerID) // it is leaving on purpose: its connection closing next is no crash
		err = n.ControlledShutdown(r.BrokerID, r.Epoch, replyErr)
	case "AlterReassignments", "ListReassignments", "UnregisterBroker":
		sc.dispatchReassign(n, corr, req) // reassign_net.go
		return
	case "FetchMetadata":
		var r rpcFetchMetadata
		if !decode(&r) {
			return
		}
		sc.t.wg.Add(1)
		go sc.fetchMetadata(n, corr, r)
		return
	default:
		err = fmt.Errorf("%w: unknown controller method %q", kerr.InvalidRequest, req.Method)
	}
	if err != nil {
		sc.reply(corr, nil, err)
	}
}

// fetchMetadata long-polls until the applied index passes r.AfterIndex (or the wait ends, or the connection
// does), then answers the whole state.
func (sc *srvConn) fetchMetadata(n *Node, corr uint64, r rpcFetchMetadata) {
	defer sc.t.wg.Done()
	wait := min(max(time.Duration(r.MaxWaitMs)*time.Millisecond, 0), maxFetchWait)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	go func() { // a closed connection ends the wait early
		select {
		case <-sc.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	n.waitApplied(ctx, r.AfterIndex)
	if n.failed() {
		sc.reply(corr, nil, ErrStopped)
		return
	}
	var md rpcMetadata
	var err error
	n.Read(func(s *State) {
		var b []byte
		if b, err = s.MarshalSnapshot(); err == nil {
			md = rpcMetadata{AppliedIndex: s.AppliedIndex, Version: b[0], State: b[1:]}
		}
	})
	sc.reply(corr, md, err)
}

func encodeElect(res map[string]map[int32]error) rpcElectResults {
	out := rpcElectResults{Results: map[string]map[int32]rpcErr{}}
	for topic, ps := range res {
		out.Results[topic] = map[int32]rpcErr{}
		for p, err := range ps {
			out.Results[topic][p] = toRPCErr(err)
		}
	}
	return out
}

func toRPCErr(err error) rpcErr {
	if err == nil {
		return rpcErr{}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return rpcErr{Code: ke.Code, Msg: err.Error()}
	}
	return rpcErr{Code: kerr.UnknownServerError.Code, Msg: err.Error()}
}

// fromRPCErr is toRPCErr's inverse on the client: an error wrapping the kerr error for the code.
func fromRPCErr(e rpcErr) error {
	if e.Code == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", kerr.ErrorForCode(e.Code), e.Msg)
}
