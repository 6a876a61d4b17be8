package node

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/segstore"
)

// appendAsLeader appends records to p as its leader and calls done once
// with the result: after the local write completed (and, under
// log.flush.policy=ack, is durable) for acks 0 and 1; after every in-sync
// replica has it too for acks -1. Standalone, the ISR is this broker, so
// every acks waits for the local write only. A non-nil return means nothing
// was queued and done will not be called. Safe for concurrent use; done
// may run on the storage committer, a fetch handler or the leader tick
// goroutine and must not block.
func (n *Node) appendAsLeader(p *partition, records []byte, acks int16, timeout time.Duration,
	done func(segstore.AppendResult)) error {
	l := p.getLog()
	if l == nil {
		return n.notLeaderErr(p)
	}
	if n.cluster == nil {
		_, err := l.Append(records, p.leaderEpoch(), func(res segstore.AppendResult) {
			if res.Err == nil {
				p.advanceHW(res.LastOffset + 1)
			}
			done(res)
		})
		return err
	}
	ldr := p.ldr.Load()
	if ldr == nil {
		return n.notLeaderErr(p)
	}
	if err := ldr.CheckAppend(acks); err != nil {
		return err
	}
	_, err := l.Append(records, ldr.Epoch(), func(res segstore.AppendResult) {
		if res.Err != nil {
			done(res)
			return
		}
		ldr.OnAppended()
		p.advanceHW(ldr.HighWatermark())
		p.notify() // parked follower fetches read up to the LEO
		if acks != -1 {
			done(res)
			return
		}
		ldr.WaitForAcks(res.LastOffset, timeout, func(err error) {
			if err != nil {
				res.Err = err
			} else {
				p.advanceHW(ldr.HighWatermark())
			}
			done(res)
		})
	})
	return err
}

// notLeaderErr says why this broker cannot take writes or leader reads
// for p: no leader at all (LEADER_NOT_AVAILABLE) or another broker leads.
func (n *Node) notLeaderErr(p *partition) error {
	st := p.state()
	if st.Leader < 0 {
		return fmt.Errorf("%w: %s-%d has no leader", kerr.LeaderNotAvailable, p.topic.name, p.index)
	}
	if n.cluster == nil {
		return fmt.Errorf("%w: %s-%d has no log yet", kerr.LeaderNotAvailable, p.topic.name, p.index)
	}
	return fmt.Errorf("%w: broker %d leads %s-%d (epoch %d)", kerr.NotLeaderForPartition, st.Leader, p.topic.name, p.index, st.LeaderEpoch)
}

// leaderCode is 0 when this broker may serve p as its leader (standalone:
// when its log exists), else the error code to answer.
func (n *Node) leaderCode(p *partition) int16 {
	if p.getLog() != nil && (n.cluster == nil || p.ldr.Load() != nil) {
		return 0
	}
	return errCode(n.notLeaderErr(p))
}
