package group

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record formats are Kafka's (GroupMetadataManager, IBP >= 2.3): keys start
// with an int16 version — 0 or 1 for an offset commit, 2 for group metadata;
// Kafka 3.7+ writes higher key versions for KIP-848 groups, which a classic
// coordinator skips.
const (
	offsetKeyVersion   = 1 // OffsetCommitKey
	groupKeyVersion    = 2 // GroupMetadataKey
	offsetValueVersion = 3 // OffsetCommitValue with leader epoch, no expire timestamp
	// offsetValueExpireVersion carries an explicit expire timestamp: Kafka
	// writes it for v2-v4 OffsetCommit requests that set RetentionTimeMillis.
	offsetValueExpireVersion = 1
	groupValueVersion        = 3 // GroupMetadataValue with static member ids
)

func groupKey(id string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: id}
	return k.AppendTo(make([]byte, 0, 4+len(id)))
}

func offsetKey(dst []byte, group string, t tp) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: t.topic, Partition: t.partition}
	return k.AppendTo(dst)
}

func offsetKeySize(group string, t tp) int { return 2 + 2 + len(group) + 2 + len(t.topic) + 4 }

func offsetValue(dst []byte, e *offsetEntry) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	if e.expireMs >= 0 {
		v.Version = offsetValueExpireVersion
		v.ExpireTimestamp = e.expireMs
	}
	v.Offset = e.offset
	v.LeaderEpoch = e.leaderEpoch
	v.Metadata = e.metadata
	v.CommitTimestamp = e.commitMs
	return v.AppendTo(dst)
}

func offsetValueSize(metadata string) int { return 2 + 8 + 4 + 2 + len(metadata) + 8 + 8 }

// groupMetadataRecord is GroupMetadataManager.groupMetadataValue: members
// carry their subscription for the selected protocol and the assignment from
// assign (nil: their current one).
func groupMetadataRecord(g *group, assign map[string][]byte) Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	v.Protocol = g.protocol
	v.Leader = g.leaderOrNil()
	v.CurrentStateTimestamp = g.stateMs
	name := ""
	if g.protocol != nil {
		name = *g.protocol
	}
	for _, m := range g.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = m.rebalanceTimeoutMs
		vm.SessionTimeoutMillis = m.sessionTimeoutMs
		vm.Subscription = m.metadata(name)
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		a := m.assignment
		if assign != nil {
			a = assign[m.id]
		}
		if a == nil {
			a = []byte{}
		}
		vm.Assignment = a
		v.Members = append(v.Members, vm)
	}
	return Record{Key: groupKey(g.id), Value: v.AppendTo(nil)}
}

// keyKind classifies a __consumer_offsets key.
type keyKind int8

const (
	keyUnknown keyKind = iota // a newer record type: skipped, as Kafka does
	keyOffset
	keyGroup
)

type parsedKey struct {
	kind  keyKind
	group string
	tp    tp
}

var errShortKey = errors.New("key shorter than its version")

func parseKey(key []byte) (parsedKey, error) {
	if len(key) < 2 {
		return parsedKey{}, errShortKey
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return parsedKey{}, fmt.Errorf("offset commit key: %w", err)
		}
		return parsedKey{kind: keyOffset, group: k.Group, tp: tp{k.Topic, k.Partition}}, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return parsedKey{}, fmt.Errorf("group metadata key: %w", err)
		}
		return parsedKey{kind: keyGroup, group: k.Group}, nil
	default:
		return parsedKey{kind: keyUnknown}, nil
	}
}

// parseOffsetValue reads OffsetCommitValue v0-v4.
func parseOffsetValue(b []byte) (offsetEntry, error) {
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(b); err != nil {
		return offsetEntry{}, fmt.Errorf("offset commit value: %w", err)
	}
	if v.Version < 0 || v.Version > 4 {
		return offsetEntry{}, fmt.Errorf("offset commit value: unknown version %d", v.Version)
	}
	e := offsetEntry{committed: true, offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata,
		commitMs: v.CommitTimestamp, expireMs: -1}
	if v.Version >= 3 {
		e.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		e.expireMs = v.ExpireTimestamp
	}
	return e, nil
}

// parseGroupValue reads GroupMetadataValue v0-v4 and checks what the
// coordinator relies on: unique member ids and instance ids, and a protocol
// when there are members.
func parseGroupValue(b []byte) (*kmsg.GroupMetadataValue, error) {
	v := new(kmsg.GroupMetadataValue)
	if err := v.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("group metadata value: %w", err)
	}
	if v.Version < 0 || v.Version > 4 {
		return nil, fmt.Errorf("group metadata value: unknown version %d", v.Version)
	}
	if len(v.Members) > 0 && v.Protocol == nil {
		return nil, fmt.Errorf("group metadata value: %d members but no protocol", len(v.Members))
	}
	ids := make(map[string]struct{}, len(v.Members))
	instances := map[string]struct{}{}
	for i := range v.Members {
		m := &v.Members[i]
		if m.MemberID == "" {
			return nil, errors.New("group metadata value: empty member id")
		}
		if _, dup := ids[m.MemberID]; dup {
			return nil, fmt.Errorf("group metadata value: duplicate member id %q", m.MemberID)
		}
		ids[m.MemberID] = struct{}{}
		if m.InstanceID != nil {
			if _, dup := instances[*m.InstanceID]; dup {
				return nil, fmt.Errorf("group metadata value: duplicate instance id %q", *m.InstanceID)
			}
			instances[*m.InstanceID] = struct{}{}
		}
		// Byte fields alias the input, which the caller may reuse.
		m.Subscription = append([]byte{}, m.Subscription...)
		m.Assignment = append([]byte{}, m.Assignment...)
	}
	return v, nil
}

// parseSubscriptionTopics reads the topics of a ConsumerProtocolSubscription
// through its v0 prefix (version, topics, user data), as Kafka does so that
// future versions still parse.
func parseSubscriptionTopics(b []byte) ([]string, bool) {
	r := kbin.Reader{Src: b}
	version := r.Int16()
	n := r.ArrayLen()
	if !r.Ok() || version < 0 || n < 0 {
		return nil, false
	}
	topics := make([]string, 0, n)
	for i := int32(0); i < n; i++ {
		topics = append(topics, r.String())
	}
	r.NullableBytes()
	return topics, r.Ok()
}
