package ctrl

import (
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Admin operations (DeleteTopics, CreatePartitions, AlterConfigs, AllocateProducerIds), decided like CreateTopic:
// under the lock on the applied state, the outcome proposed, Apply re-validating it.

// DeleteTopic proposes deleting a topic (by its current id, so a stale delete cannot hit a re-created topic).
// Errors (sync or via done) wrap UNKNOWN_TOPIC_OR_PARTITION, or are ErrNotLeader. Safe for concurrent use.
func (n *Node) DeleteTopic(name string, done func(error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	t := n.state.Topics[name]
	if t == nil {
		return fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, name)
	}
	return n.proposeRecords([]Record{{Type: TypeDeleteTopic, DeleteTopic: &DeleteTopic{Name: name, ID: t.ID}}}, done)
}

// CreatePartitions grows a topic to total partitions, placing the new ones' replicas with Place on the unfenced
// brokers (replication factor of partition 0), all replicas in the ISR, the preferred replica leading. Errors wrap
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS (total not above the current count), INVALID_REPLICATION_FACTOR
// (too few unfenced brokers), or are ErrNotLeader. Safe for concurrent use.
func (n *Node) CreatePartitions(name string, total int, done func(error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, cur, err := n.growableLocked(name, total)
	if err != nil {
		return err
	}
	bs := PlaceBrokers(n.state)
	if len(bs) == 0 {
		return fmt.Errorf("%w: no unfenced brokers", kerr.InvalidReplicationFactor)
	}
	assign, err := Place(PlaceRequest{Brokers: bs, Partitions: total - cur, RF: len(t.Partitions[0].Replicas),
		FirstPartition: cur, StartIndex: mrand.IntN(len(bs)), Shift: mrand.IntN(len(bs))})
	if err != nil {
		return err
	}
	cp := &CreatePartitions{Topic: name, ID: t.ID}
	for _, rs := range assign {
		cp.Partitions = append(cp.Partitions, PartitionInit{Replicas: rs, ISR: slices.Clone(rs), Leader: rs[0]})
	}
	b, err := EncodeRecord(Record{Type: TypeCreatePartitions, CreatePartitions: cp})
	if err != nil { // above MaxRecordSize: tens of thousands of new partitions at once
		return fmt.Errorf("%w: %w", kerr.InvalidPartitions, err)
	}
	return n.proposeLocked(b, func(_ uint64, err error) { callErr(done, err) })
}

// growableLocked checks a request to grow topic name to total partitions and returns the topic and its current
// count. Called with n.mu held.
func (n *Node) growableLocked(name string, total int) (*Topic, int, error) {
	if err := n.activeLocked(); err != nil {
		return nil, 0, err
	}
	t := n.state.Topics[name]
	if t == nil {
		return nil, 0, fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, name)
	}
	cur := len(t.Partitions)
	if total <= cur {
		return nil, 0, fmt.Errorf("%w: topic %q has %d partitions, asked for %d", kerr.InvalidPartitions, name, cur, total)
	}
	if total-cur > MaxNewPartitions {
		return nil, 0, fmt.Errorf("%w: %d new partitions at once, at most %d", kerr.InvalidPartitions, total-cur, MaxNewPartitions)
	}
	return t, cur, nil
}

// MaxNewPartitions bounds the partitions one CreateTopic or CreatePartitions adds: their record could not fit in
// MaxRecordSize anyway, and placing a hostile count (say 2^31) first would exhaust memory.
const MaxNewPartitions = 1 << 16

// Kafka's ConfigResource types accepted by SetConfigs.
const (
	ConfigResourceTopic  int8 = 2
	ConfigResourceBroker int8 = 4
)

// SetConfigs replaces the dynamic config overrides of a topic (resourceType 2, name = topic) or a broker
// (resourceType 4, name = broker id in decimal, "" = cluster-wide default) with configs: keys absent from configs
// are deleted. It proposes one batch of SetConfig records (nothing when nothing changes), followed by the elections
// an enabled unclean.leader.election.enable now allows. The batch is validated on a copy of the state first, so
// errors come back synchronously: they wrap UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG, INVALID_REQUEST, or are
// ErrNotLeader. Safe for concurrent use.
func (n *Node) SetConfigs(resourceType int8, name string, configs map[string]string, done func(error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	var cur map[string]string
	var kind string
	switch resourceType {
	case ConfigResourceTopic:
		t := n.state.Topics[name]
		if t == nil {
			return fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, name)
		}
		cur, kind = t.Configs, ResourceTopic
	case ConfigResourceBroker:
		if id, err := strconv.ParseInt(name, 10, 32); name != "" && (err != nil || id < 0 || strconv.Itoa(int(id)) != name) {
			return fmt.Errorf("%w: broker resource name %q is not a broker id", kerr.InvalidRequest, name)
		}
		cur, kind = n.state.BrokerConfigs[name], ResourceBroker
	default:
		return fmt.Errorf("%w: config resource type %d is neither topic (2) nor broker (4)", kerr.InvalidRequest, resourceType)
	}
	var recs []Record
	for _, k := range sortedKeys(cur) {
		if _, keep := configs[k]; !keep {
			recs = append(recs, Record{Type: TypeSetConfig, SetConfig: &SetConfig{Resource: kind, Name: name, Key: k}})
		}
	}
	for _, k := range sortedKeys(configs) {
		if old, ok := cur[k]; !ok || old != configs[k] {
			v := configs[k]
			recs = append(recs, Record{Type: TypeSetConfig, SetConfig: &SetConfig{Resource: kind, Name: name, Key: k, Value: &v}})
		}
	}
	if len(recs) == 0 {
		n.later(func() { callErr(done, nil) })
		return nil
	}
	// Validate on a copy (Apply's checks answer synchronously), then add what the new configs make electable.
	c := n.state.Clone()
	if err := c.Apply(batch(recs), c.AppliedIndex+1); err != nil {
		return err
	}
	recs = append(recs, changeRecords(OfflineChanges(c))...)
	return n.proposeRecords(recs, done)
}

// pidAlloc lets several AllocateProducerIDs be in flight at once: each next block starts where the previous
// proposed one ends. While none is in flight the next block starts at the applied NextProducerID, so a failed
// proposal costs only the ones proposed after it.
type pidAlloc struct {
	next     int64
	inflight int
}

// AllocateProducerIDs hands broker brokerID (at its current epoch) the next block of count producer ids (count
// <= 0: ProducerIDBlockSize, Kafka's block). done gets the first id of the block. Errors wrap
// BROKER_ID_NOT_REGISTERED or INVALID_REQUEST, or are ErrNotLeader. Safe for concurrent use.
func (n *Node) AllocateProducerIDs(brokerID int32, count int64, done func(first int64, err error)) error {
	if count <= 0 {
		count = ProducerIDBlockSize
	}
	if count > 1<<20 {
		return fmt.Errorf("%w: producer id block of %d, at most %d", kerr.InvalidRequest, count, 1<<20)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.activeLocked(); err != nil {
		return err
	}
	b := n.state.Brokers[brokerID]
	if b == nil {
		return fmt.Errorf("%w: broker %d", kerr.BrokerIDNotRegistered, brokerID)
	}
	first := n.state.NextProducerID
	if n.pid.inflight > 0 {
		first = max(first, n.pid.next)
	}
	r := Record{Type: TypeAllocateProducerIDs, AllocateProducerIDs: &AllocateProducerIDs{BrokerID: brokerID,
		BrokerEpoch: b.Epoch, First: first, Size: int32(count)}}
	err := n.proposeRecords([]Record{r}, func(err error) {
		n.mu.Lock()
		n.pid.inflight--
		n.mu.Unlock()
		if done != nil {
			done(first, err)
		}
	})
	if err == nil {
		n.pid.next, n.pid.inflight = first+count, n.pid.inflight+1
	}
	return err
}

// activeLocked returns the sticky error or ErrNotLeader unless this controller is active. Runs under mu.
func (n *Node) activeLocked() error {
	if n.err != nil {
		return n.err
	}
	if !n.leading {
		return ErrNotLeader
	}
	return nil
}

// failed reports whether the Node stopped (Stop or a storage failure). Safe for concurrent use.
func (n *Node) failed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err != nil
}

// proposeRecords proposes recs as one (batch) record; done gets the outcome. Runs under mu.
func (n *Node) proposeRecords(recs []Record, done func(error)) error {
	b, err := EncodeRecord(batch(recs))
	if err != nil {
		return err
	}
	return n.proposeLocked(b, func(_ uint64, err error) { callErr(done, err) })
}

// later queues fn to run without the lock on the next Process or Tick (as a proposal callback would). Runs under mu.
func (n *Node) later(fn func()) {
	n.ready = append(n.ready, fn)
	n.signal()
}

func callErr(done func(error), err error) {
	if done != nil {
		done(err)
	}
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
