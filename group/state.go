package group

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is Kafka's GroupState of a classic group.
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// stateNames are the names Kafka returns in DescribeGroups and ListGroups.
var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s groupState) String() string { return stateNames[s] }

// consumerProtocolType is ConsumerProtocol.PROTOCOL_TYPE: groups of this type
// carry parseable subscriptions, which OffsetDelete and offset expiry use.
const consumerProtocolType = "consumer"

type tp struct {
	topic     string
	partition int32
}

// offsetEntry is one committed offset plus the commits for it still in
// flight. An entry exists while it is committed or has pending commits.
type offsetEntry struct {
	committed   bool // a durable value is present (visible to OffsetFetch)
	offset      int64
	leaderEpoch int32
	metadata    string
	commitMs    int64
	expireMs    int64  // -1: none (only v2-v4 OffsetCommit sets a retention time)
	seq         uint64 // log order of the record that set or removed the value
	pending     int    // appended commits not yet durable
}

// group is one classic group. Every field is guarded by mu.
type group struct {
	mu   sync.Mutex
	id   string
	part int32
	dead bool // removed from the coordinator; holders must look the group up again

	state      groupState
	stateMs    int64 // currentStateTimestamp; -1 when unknown (loaded from an old record)
	generation int32
	// protocolType is Kafka's Option[String]: "" is None (a member can never
	// join with an empty type, so Some("") cannot happen).
	protocolType string
	protocol     *string // selected protocol; nil unless CompletingRebalance or Stable (or loaded Stable)
	leader       string

	members     []*member // in join order: the leader's member list and DescribeGroups keep it
	byID        map[string]*member
	static      map[string]string // group.instance.id -> member id
	pending     map[string]*pendingMember
	pendingSync map[string]struct{}
	supported   map[string]int // protocol name -> members supporting it
	numAwaiting int            // members with join != nil

	newMemberAdded bool // InitialDelayedJoin: extend the delay
	initialDelay   bool // the join timer is the initial delay, which never completes early
	joinTimer      Timer
	joinGen        uint64
	syncTimer      Timer
	syncGen        uint64

	subscribed      map[string]struct{} // union of consumer subscriptions
	subscribedKnown bool

	offsets map[tp]*offsetEntry
	seq     uint64 // orders this group's records as appended
}

func newGroup(id string, part int32, nowMs int64) *group {
	return &group{
		id:          id,
		part:        part,
		stateMs:     nowMs,
		byID:        map[string]*member{},
		static:      map[string]string{},
		pending:     map[string]*pendingMember{},
		pendingSync: map[string]struct{}{},
		supported:   map[string]int{},
		offsets:     map[tp]*offsetEntry{},
	}
}

func (g *group) setState(s groupState, nowMs int64) {
	g.state = s
	g.stateMs = nowMs
}

func (g *group) has(id string) bool { _, ok := g.byID[id]; return ok }

func (g *group) setJoin(m *member, w *waiter) {
	if m.join == nil && w != nil {
		g.numAwaiting++
	} else if m.join != nil && w == nil {
		g.numAwaiting--
	}
	m.join = w
}

// add is GroupMetadata.add: the first member fixes the protocol type and
// becomes leader if there is none.
func (g *group) add(m *member, w *waiter) {
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members = append(g.members, m)
	g.byID[m.id] = m
	for _, p := range m.protocols {
		g.supported[p.name]++
	}
	g.setJoin(m, w)
	if pm := g.pending[m.id]; pm != nil {
		pm.timer.Stop()
		delete(g.pending, m.id)
	}
}

// remove is GroupMetadata.remove: it drops a member (or a pending member id)
// and moves leadership to the first remaining member. Callers answer the
// member's parked requests and stop its timer.
func (g *group) remove(id string) *member {
	if pm := g.pending[id]; pm != nil {
		delete(g.pending, id)
		if pm.timer != nil {
			pm.timer.Stop()
		}
	}
	delete(g.pendingSync, id)
	m := g.byID[id]
	if m == nil {
		return nil
	}
	delete(g.byID, id)
	for i, x := range g.members {
		if x == m {
			g.members = append(g.members[:i], g.members[i+1:]...)
			break
		}
	}
	for _, p := range m.protocols {
		if g.supported[p.name]--; g.supported[p.name] <= 0 {
			delete(g.supported, p.name)
		}
	}
	g.setJoin(m, nil)
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == id {
		g.leader = ""
		if len(g.members) > 0 {
			g.leader = g.members[0].id
		}
	}
	return m
}

// updateMember replaces a member's protocols and timeouts and parks w (nil:
// not awaiting a join). The caller answers a replaced waiter.
func (g *group) updateMember(m *member, ps []protocol, rebalanceMs, sessionMs int32, w *waiter) {
	for _, p := range m.protocols {
		if g.supported[p.name]--; g.supported[p.name] <= 0 {
			delete(g.supported, p.name)
		}
	}
	m.protocols = ps
	for _, p := range ps {
		g.supported[p.name]++
	}
	m.rebalanceTimeoutMs = rebalanceMs
	m.sessionTimeoutMs = sessionMs
	g.setJoin(m, w)
}

// supportsProtocols is GroupMetadata.supportsProtocols: the first member must
// bring a type and at least one protocol; later members must match the type
// and share a protocol every current member supports.
func (g *group) supportsProtocols(ptype string, ps []protocol) bool {
	if g.state == stateEmpty {
		return ptype != "" && len(ps) > 0
	}
	if g.protocolType != ptype {
		return false
	}
	for _, p := range ps {
		if g.supported[p.name] == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol is GroupMetadata.selectProtocol: among the protocols every
// member supports, each member votes for its most preferred one; most votes
// wins. Kafka breaks ties by hash order; here the tie goes to the candidate
// that got its first vote first (join order), which is deterministic.
func (g *group) selectProtocol() string {
	votes := make(map[string]int, 4)
	var order []string
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supported[p.name] != len(g.members) {
				continue
			}
			if votes[p.name] == 0 {
				order = append(order, p.name)
			}
			votes[p.name]++
			break
		}
	}
	best, bestVotes := "", 0
	for _, name := range order {
		if votes[name] > bestVotes {
			best, bestVotes = name, votes[name]
		}
	}
	return best
}

func (g *group) rebalanceTimeoutMs() int32 {
	var max int32
	for _, m := range g.members {
		if m.rebalanceTimeoutMs > max {
			max = m.rebalanceTimeoutMs
		}
	}
	return max
}

// hasAllMembersJoined is Kafka's condition to end PreparingRebalance early:
// every member rejoined and no MEMBER_ID_REQUIRED member is outstanding.
func (g *group) hasAllMembersJoined() bool {
	return len(g.members) == g.numAwaiting && len(g.pending) == 0
}

// computeSubscribed is GroupMetadata.computeSubscribedTopics: for the
// "consumer" protocol type, the union of the members' subscribed topics,
// parsed as the v0 prefix every ConsumerProtocolSubscription version shares;
// unknown when any subscription does not parse.
func (g *group) computeSubscribed() {
	g.subscribed, g.subscribedKnown = nil, false
	if g.protocolType != consumerProtocolType || g.protocol == nil || len(g.members) == 0 {
		return
	}
	set := map[string]struct{}{}
	for _, m := range g.members {
		topics, ok := parseSubscriptionTopics(m.metadata(*g.protocol))
		if !ok {
			return
		}
		for _, t := range topics {
			set[t] = struct{}{}
		}
	}
	g.subscribed, g.subscribedKnown = set, true
}

// isSubscribedTo is GroupMetadata.isSubscribedToTopic: unknown subscriptions
// count as subscribed to everything.
func (g *group) isSubscribedTo(topic string) bool {
	if !g.subscribedKnown {
		return true
	}
	_, ok := g.subscribed[topic]
	return ok
}

// hasOffsets counts pending commits too, as Kafka's hasOffsets does.
func (g *group) hasOffsets() bool { return len(g.offsets) > 0 }

// vacuous: a group that a rejected request created and nothing refers to.
// Kafka leaves such a group in its cache until the next cleanup; dropping it
// at once keeps "bad input changes nothing".
func (g *group) vacuous() bool {
	return g.state == stateEmpty && g.generation == 0 && len(g.members) == 0 && len(g.pending) == 0 &&
		len(g.offsets) == 0 && g.protocolType == ""
}

func (g *group) leaderOrNil() *string {
	if g.leader == "" {
		return nil
	}
	s := g.leader
	return &s
}

func (g *group) protocolTypeOrNil() *string {
	if g.protocolType == "" {
		return nil
	}
	s := g.protocolType
	return &s
}

// memberList is GroupMetadata.currentMemberMetadata: what the leader gets.
func (g *group) memberList() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	name := ""
	if g.protocol != nil {
		name = *g.protocol
	}
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadata(name)
		out = append(out, jm)
	}
	return out
}
