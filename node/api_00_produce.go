// Produce (key 0), versions 3-11.
//
// Each partition's records (v2 RecordBatches) are validated and appended by
// segstore; the answer goes out when every partition's append completed (and,
// under log.flush.policy=ack, is fsynced). acks=0 sends no answer but still
// waits, because the request buffer is the append buffer. With one broker
// the ISR is the leader alone, so acks=1 and acks=-1 wait for the same thing;
// acks=-1 answers NOT_ENOUGH_REPLICAS when the topic's min.insync.replicas
// exceeds the ISR. Unknown topics are auto-created (auto.create.topics.enable)
// before appending.
//
// Idempotent producers (ids from InitProducerId) are checked per partition
// as Kafka does: an older epoch answers INVALID_PRODUCER_EPOCH, a sequence
// that does not follow the last one OUT_OF_ORDER_SEQUENCE_NUMBER, and a
// retry of one of the producer's last five batches NONE with the original's
// base offset, writing nothing — once the original is durable (a retry of a
// batch still being written waits for it, and fails if it fails).
//
// Deviations: more than one batch per partition is accepted (Kafka v3+
// refuses it), checked in order and all or nothing; a request mixing
// retried and new batches of a partition answers INVALID_RECORD (Kafka
// would drop the new ones unwritten). Transactional and control batches
// answer TRANSACTIONAL_ID_AUTHORIZATION_FAILED: there is no transaction
// coordinator yet.
package node

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

func init() {
	registerAPI(&apiDef{key: 0, min: 3, max: 11, handle: handleProduce})
}

func handleProduce(n *Node, c *call) {
	req := c.kreq.(*kmsg.ProduceRequest)
	if n.cfg.AutoCreateTopics {
		for i := range req.Topics {
			if n.reg.get(req.Topics[i].Topic) == nil {
				// Creating topics does disk I/O: leave the loop.
				c.async(func() {
					for i := range req.Topics {
						if n.reg.get(req.Topics[i].Topic) == nil {
							n.autoCreate(req.Topics[i].Topic)
						}
					}
					n.produce(c, req)
				})
				return
			}
		}
	}
	n.produce(c, req)
}

// produceState collects one request's partition results.
type produceState struct {
	c    *call
	resp *kmsg.ProduceResponse
	acks int16
	// timeout bounds an acks=-1 wait for the in-sync replicas.
	timeout time.Duration
	// pending counts outstanding appends plus one for the issuing loop, so
	// the answer cannot go out before every append was queued.
	pending atomic.Int32
}

func (ps *produceState) doneOne() {
	if ps.pending.Add(-1) == 0 {
		if ps.acks == 0 {
			ps.c.noResponse()
			// Kafka closes an acks=0 connection whose produce failed: it is
			// the only way such a client learns to refresh and retry.
			if produceFailed(ps.resp) {
				ps.c.req.Conn.Close()
			}
			return
		}
		ps.c.n.addLeaderHints(ps.resp)
		ps.c.respond(ps.resp)
	}
}

func (n *Node) produce(c *call, req *kmsg.ProduceRequest) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	ps := &produceState{c: c, resp: resp, acks: req.Acks, timeout: time.Duration(req.TimeoutMillis) * time.Millisecond}
	ps.pending.Store(1)
	// The response skeleton is complete before any append is queued, so
	// completions may fill their slot from the committer goroutine.
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		resp.Topics[i].Topic = rt.Topic
		resp.Topics[i].Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			rp.Default()
			rp.Partition = rt.Partitions[j].Partition
			rp.BaseOffset = -1
		}
	}
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := n.reg.get(rt.Topic)
		minISR := n.minInsync(t)
		for j := range rt.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			if code, msg := n.appendPartition(ps, req.Acks, t, rt.Topic, minISR, &rt.Partitions[j], rp); code != 0 {
				rp.ErrorCode, rp.ErrorMessage = code, msg
				n.leaderHint(t, rt.Partitions[j].Partition, rp)
			}
		}
	}
	ps.doneOne()
}

// appendPartition queues one partition's records, or returns why not.
func (n *Node) appendPartition(ps *produceState, acks int16, t *topic, name string, minISR int,
	in *kmsg.ProduceRequestTopicPartition, out *kmsg.ProduceResponseTopicPartition) (int16, *string) {
	switch {
	case acks != 0 && acks != 1 && acks != -1:
		return kerr.InvalidRequiredAcks.Code, nil
	case t == nil:
		if err := segstore.ValidateTopic(name); err != nil {
			return kerr.InvalidTopicException.Code, errMsg(err)
		}
		return kerr.UnknownTopicOrPartition.Code, nil
	case name == offsetsTopic:
		// Only the coordinator writes there (Kafka refuses clients the same way).
		msg := "cannot append to internal topic " + offsetsTopic
		return kerr.InvalidTopicException.Code, &msg
	}
	parts := n.reg.partitions(t)
	if in.Partition < 0 || int(in.Partition) >= len(parts) {
		return kerr.UnknownTopicOrPartition.Code, nil
	}
	p := parts[in.Partition]
	if code := n.leaderCode(p); code != 0 {
		return code, nil
	}
	if st := p.state(); n.cluster == nil && acks == -1 && len(st.ISR) < minISR {
		msg := "in-sync replicas " + strconv.Itoa(len(st.ISR)) + " < min.insync.replicas " + strconv.Itoa(minISR)
		return kerr.NotEnoughReplicas.Code, &msg
	}
	if len(in.Records) == 0 {
		msg := "no record batch"
		return kerr.InvalidRecord.Code, &msg
	}
	ps.pending.Add(1)
	err := n.appendAsLeader(p, in.Records, acks, ps.timeout, func(res segstore.AppendResult) {
		if res.Err != nil {
			out.ErrorCode, out.ErrorMessage = errCode(res.Err), errMsg(res.Err)
			n.leaderHint(t, p.index, out)
			n.logAppendError(p, res.Err)
		} else {
			out.BaseOffset, out.LogAppendTime = res.BaseOffset, res.LogAppendTime
			if l := p.getLog(); l != nil {
				out.LogStartOffset = l.Offsets().Start
			}
		}
		ps.doneOne()
	})
	if err != nil {
		ps.pending.Add(-1)
		n.logAppendError(p, err)
		return errCode(err), errMsg(err)
	}
	return 0, nil
}

func produceFailed(resp *kmsg.ProduceResponse) bool {
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if resp.Topics[i].Partitions[j].ErrorCode != 0 {
				return true
			}
		}
	}
	return false
}

// minInsync is the topic's min.insync.replicas.
func (n *Node) minInsync(t *topic) int {
	if t == nil {
		return n.cfg.MinInsyncReplicas
	}
	if v, ok := n.reg.configs(t)["min.insync.replicas"]; ok {
		if m, err := strconv.Atoi(v); err == nil {
			return m
		}
	}
	return n.cfg.MinInsyncReplicas
}

// logAppendError logs storage failures (operators must see them); invalid
// client input is only counted, as it says nothing about the broker.
func (n *Node) logAppendError(p *partition, err error) {
	if errors.Is(err, segstore.ErrStorage) {
		n.log.Error("append failed", "topic", p.topic.name, "partition", p.index, "err", err)
		return
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return // replication's answers (not leader, not enough replicas) say nothing about the batch
	}
	n.m.badBatches.Inc()
}
