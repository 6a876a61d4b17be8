package ctrl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// RecordVersion is the first byte of every encoded Record. A reader refuses any other value rather than guessing, so
// a controller that meets a log written by a newer version stops with a clear error instead of diverging.
const RecordVersion = 1

// MaxRecordSize bounds an encoded record (1 MiB, well above any sane metadata change) so a corrupt length or a
// hostile proposal cannot make the decoder allocate without limit.
const MaxRecordSize = 1 << 20

// RecordType names what a Record changes.
type RecordType uint8

// Record types. The numbers are part of the on-disk format: never renumber, only append.
const (
	TypeRegisterBroker      RecordType = 1
	TypeFenceBroker         RecordType = 2
	TypeUnfenceBroker       RecordType = 3
	TypeCreateTopic         RecordType = 4
	TypeDeleteTopic         RecordType = 5
	TypeCreatePartitions    RecordType = 6
	TypeChangePartition     RecordType = 7
	TypeSetConfig           RecordType = 8
	TypeAllocateProducerIDs RecordType = 9
	TypeBatch               RecordType = 10
	TypeReassignPartition   RecordType = 11 // body in reassign.go
	TypeUnregisterBroker    RecordType = 12 // body in reassign.go
)

var typeNames = map[RecordType]string{
	TypeRegisterBroker: "RegisterBroker", TypeFenceBroker: "FenceBroker", TypeUnfenceBroker: "UnfenceBroker",
	TypeCreateTopic: "CreateTopic", TypeDeleteTopic: "DeleteTopic", TypeCreatePartitions: "CreatePartitions",
	TypeChangePartition: "ChangePartition", TypeSetConfig: "SetConfig", TypeAllocateProducerIDs: "AllocateProducerIDs",
	TypeBatch: "Batch", TypeReassignPartition: "ReassignPartition", TypeUnregisterBroker: "UnregisterBroker",
}

func (t RecordType) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("RecordType(%d)", uint8(t))
}

// TopicID is a topic's UUID. It prints as Kafka prints it (unpadded URL-safe base64).
type TopicID [16]byte

func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TopicID) UnmarshalText(b []byte) error {
	var tmp [16]byte
	n, err := base64.RawURLEncoding.Decode(tmp[:], b)
	if err != nil || n != 16 || len(b) != 22 {
		return fmt.Errorf("topic id %q: want 22 characters of unpadded URL-safe base64", b)
	}
	*id = tmp
	return nil
}

// Record is one metadata change: Type says which of the body fields is set, and exactly that one is. Records are
// outcomes, not requests (as in KRaft): the active controller decides (placement, election) and the record states
// the result, so replaying the log never re-runs a decision whose rules may have changed since.
type Record struct {
	Type                RecordType           `json:"type"`
	RegisterBroker      *RegisterBroker      `json:"registerBroker,omitempty"`
	FenceBroker         *FenceBroker         `json:"fenceBroker,omitempty"`
	UnfenceBroker       *UnfenceBroker       `json:"unfenceBroker,omitempty"`
	CreateTopic         *CreateTopic         `json:"createTopic,omitempty"`
	DeleteTopic         *DeleteTopic         `json:"deleteTopic,omitempty"`
	CreatePartitions    *CreatePartitions    `json:"createPartitions,omitempty"`
	ChangePartition     *ChangePartition     `json:"changePartition,omitempty"`
	SetConfig           *SetConfig           `json:"setConfig,omitempty"`
	AllocateProducerIDs *AllocateProducerIDs `json:"allocateProducerIds,omitempty"`
	ReassignPartition   *ReassignPartition   `json:"reassignPartition,omitempty"`
	UnregisterBroker    *UnregisterBroker    `json:"unregisterBroker,omitempty"`
	// Batch is applied atomically: every member is validated against the state the earlier members produced, and
	// if one fails none takes effect. Batches do not nest.
	Batch []Record `json:"batch,omitempty"`
}

// Endpoint is one listener of a broker.
type Endpoint struct {
	Name     string `json:"name"` // listener name, e.g. PLAINTEXT
	Host     string `json:"host"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol,omitempty"` // security protocol; empty means PLAINTEXT
}

// RegisterBroker registers (or re-registers) a broker. It starts fenced; the broker epoch becomes the log index of
// this record, as in KRaft.
type RegisterBroker struct {
	ID          int32      `json:"id"`
	Incarnation string     `json:"incarnation"` // unique per broker process start
	Listeners   []Endpoint `json:"listeners"`
	Rack        string     `json:"rack,omitempty"`
	TimeMs      int64      `json:"timeMs"` // the active controller's clock when it decided; recorded, never re-read
}

// FenceBroker fences a broker; Epoch must be its current broker epoch.
type FenceBroker struct {
	ID     int32 `json:"id"`
	Epoch  int64 `json:"epoch"`
	TimeMs int64 `json:"timeMs"`
}

// UnfenceBroker unfences a broker; Epoch must be its current broker epoch.
type UnfenceBroker struct {
	ID     int32 `json:"id"`
	Epoch  int64 `json:"epoch"`
	TimeMs int64 `json:"timeMs"`
}

// PartitionInit is a new partition's full initial state.
type PartitionInit struct {
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
	Leader   int32   `json:"leader"` // -1: no leader
}

// CreateTopic creates a topic with its partitions (numbered from 0).
type CreateTopic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []PartitionInit   `json:"partitions"`
}

// DeleteTopic deletes a topic; both name and id must match, so a stale delete cannot remove a re-created topic.
type DeleteTopic struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id"`
}

// CreatePartitions appends partitions to a topic, numbered after the existing ones.
type CreatePartitions struct {
	Topic      string          `json:"topic"`
	ID         TopicID         `json:"id"`
	Partitions []PartitionInit `json:"partitions"`
}

// ChangePartition sets a partition's leader and ISR. PartitionEpoch is the epoch the change was computed from:
// apply rejects it unless it is still current (optimistic concurrency), then bumps the partition epoch, and the
// leader epoch too when the leader changes.
type ChangePartition struct {
	Topic          string  `json:"topic"`
	ID             TopicID `json:"id"`
	Partition      int32   `json:"partition"`
	PartitionEpoch int32   `json:"partitionEpoch"`
	Leader         int32   `json:"leader"`
	ISR            []int32 `json:"isr"`
}

// Config resource kinds for SetConfig.
const (
	ResourceTopic  = "topic"
	ResourceBroker = "broker" // Name is the broker id in decimal, or "" for the cluster-wide default
)

// SetConfig sets (Value non-nil) or deletes (Value nil) one config key of a topic or broker.
type SetConfig struct {
	Resource string  `json:"resource"`
	Name     string  `json:"name"`
	Key      string  `json:"key"`
	Value    *string `json:"value"`
}

// AllocateProducerIDs hands the block [First, First+Size) to a broker. First must equal the next free id.
type AllocateProducerIDs struct {
	BrokerID    int32 `json:"brokerId"`
	BrokerEpoch int64 `json:"brokerEpoch"`
	First       int64 `json:"first"`
	Size        int32 `json:"size"`
}

// EncodeRecord returns the version byte followed by the record as JSON.
// It is pure and safe for concurrent use.
func EncodeRecord(r Record) ([]byte, error) {
	if err := r.checkShape(true); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte(RecordVersion)
	if err := json.NewEncoder(&buf).Encode(r); err != nil {
		return nil, fmt.Errorf("ctrl: encode %v record: %w", r.Type, err)
	}
	if buf.Len() > MaxRecordSize {
		return nil, fmt.Errorf("ctrl: encoded %v record is %d bytes, above the %d limit", r.Type, buf.Len(), MaxRecordSize)
	}
	return buf.Bytes(), nil
}

// DecodeRecord parses what EncodeRecord wrote. Unknown versions, unknown fields, trailing data and a body that does
// not match the type are errors. It checks shape only; whether the change is valid is Apply's business.
// It is pure and safe for concurrent use.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) == 0 {
		return r, errors.New("ctrl: empty record")
	}
	if len(b) > MaxRecordSize {
		return r, fmt.Errorf("ctrl: record is %d bytes, above the %d limit", len(b), MaxRecordSize)
	}
	if b[0] != RecordVersion {
		return r, fmt.Errorf("ctrl: record version %d, this controller reads only version %d", b[0], RecordVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b[1:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("ctrl: decode record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("ctrl: decode record: trailing data after the record")
	}
	if err := r.checkShape(true); err != nil {
		return Record{}, err
	}
	return r, nil
}

// checkShape verifies exactly the body named by Type is set.
func (r *Record) checkShape(top bool) error {
	set := 0
	var want bool
	for _, f := range []struct {
		t  RecordType
		ok bool
	}{
		{TypeRegisterBroker, r.RegisterBroker != nil}, {TypeFenceBroker, r.FenceBroker != nil},
		{TypeUnfenceBroker, r.UnfenceBroker != nil}, {TypeCreateTopic, r.CreateTopic != nil},
		{TypeDeleteTopic, r.DeleteTopic != nil}, {TypeCreatePartitions, r.CreatePartitions != nil},
		{TypeChangePartition, r.ChangePartition != nil}, {TypeSetConfig, r.SetConfig != nil},
		{TypeAllocateProducerIDs, r.AllocateProducerIDs != nil}, {TypeBatch, r.Batch != nil},
		{TypeReassignPartition, r.ReassignPartition != nil}, {TypeUnregisterBroker, r.UnregisterBroker != nil},
	} {
		if f.ok {
			set++
			if f.t == r.Type {
				want = true
			}
		}
	}
	if _, ok := typeNames[r.Type]; !ok {
		return fmt.Errorf("ctrl: unknown record type %d", uint8(r.Type))
	}
	if set != 1 || !want {
		return fmt.Errorf("ctrl: %v record must carry exactly its own body (has %d bodies)", r.Type, set)
	}
	if r.Type == TypeBatch {
		if !top {
			return errors.New("ctrl: batches do not nest")
		}
		if len(r.Batch) == 0 {
			return errors.New("ctrl: empty batch")
		}
		for i := range r.Batch {
			if err := r.Batch[i].checkShape(false); err != nil {
				return fmt.Errorf("batch member %d: %w", i, err)
			}
		}
	}
	return nil
}
