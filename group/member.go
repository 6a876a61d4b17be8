package group

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type protocol struct {
	name     string
	metadata []byte
}

// waiter is a request parked until the group moves on (JoinGroup waiting for
// the rebalance, SyncGroup waiting for the leader's assignment).
type waiter struct {
	respond func(kmsg.Response)
	version int16
}

// member is one member of a group. Guarded by its group's mu.
type member struct {
	id                 string
	instanceID         *string // static membership (KIP-345)
	clientID           string
	clientHost         string
	rebalanceTimeoutMs int32
	sessionTimeoutMs   int32
	protocolType       string
	protocols          []protocol // in the member's order of preference
	assignment         []byte

	join *waiter // awaiting the JoinGroup response
	sync *waiter // awaiting the SyncGroup response
	// isNew: joined but not yet through a completed rebalance; such a member
	// expires after newMemberJoinTimeout even while awaiting its join.
	isNew bool

	// Session (or new-member join) expiry. A heartbeat only moves deadline;
	// the armed timer re-arms itself when it fires early, so heartbeats and
	// commits do not create a timer each.
	deadline time.Time
	timer    Timer
	timerAt  time.Time
	timerGen uint64 // invalidates fired timers that lost the race with a Stop
}

func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// matches is Kafka's MemberMetadata.matches: same protocols, same order, same
// metadata bytes.
func (m *member) matches(ps []protocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].name != m.protocols[i].name || !bytes.Equal(ps[i].metadata, m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

type pendingMember struct {
	timer Timer
	gen   uint64
}
