package perf

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Mode names a workload kind.
type Mode string

// The workload kinds sluice bench runs.
const (
	ModeProduce Mode = "produce" // kgo producers; latency is produce → ack
	ModeConsume Mode = "consume" // kgo consumers draining existing data; throughput only
	ModeE2E     Mode = "e2e"     // producers and consumers together; latency is send → consume
	ModeRaw     Mode = "raw"     // pre-encoded Produce requests on pipelined TCP connections
)

// Workload is one benchmark's configuration. The YAML and JSON names are the
// CLI flag names with '-' turned into '_'. A Workload is a plain value: copy
// it freely; it is never mutated by a run.
type Workload struct {
	Name              string        `yaml:"name,omitempty" json:"name,omitempty"`
	Mode              Mode          `yaml:"mode" json:"mode"`
	Brokers           []string      `yaml:"brokers,omitempty" json:"brokers"`
	Topic             string        `yaml:"topic,omitempty" json:"topic"`
	Partitions        int32         `yaml:"partitions,omitempty" json:"partitions"`
	ReplicationFactor int16         `yaml:"replication_factor,omitempty" json:"replication_factor"`
	CreateTopic       bool          `yaml:"create_topic" json:"create_topic"`
	RecordSize        int           `yaml:"record_size,omitempty" json:"record_size"`
	SizeDist          string        `yaml:"size_dist,omitempty" json:"size_dist,omitempty"`
	Keys              int           `yaml:"keys,omitempty" json:"keys"`
	Producers         int           `yaml:"producers,omitempty" json:"producers"`
	Consumers         int           `yaml:"consumers,omitempty" json:"consumers"`
	Acks              string        `yaml:"acks,omitempty" json:"acks"`
	Linger            time.Duration `yaml:"linger,omitempty" json:"linger_ns"`
	BatchBytes        int32         `yaml:"batch_bytes,omitempty" json:"batch_bytes"`
	Compression       string        `yaml:"compression,omitempty" json:"compression"`
	// Idempotent nil means Kafka's default: on when acks=all, off otherwise.
	Idempotent *bool         `yaml:"idempotent,omitempty" json:"idempotent,omitempty"`
	Duration   time.Duration `yaml:"duration,omitempty" json:"duration_ns"`
	Records    int64         `yaml:"records,omitempty" json:"records"`
	// Rate is records per second across all producers; 0 is max throughput.
	Rate float64 `yaml:"rate,omitempty" json:"rate"`
	// MaxInFlight bounds records buffered per kgo producer; 1 makes a strict
	// closed loop (one record outstanding). 0 keeps kgo's default.
	MaxInFlight int `yaml:"max_in_flight,omitempty" json:"max_in_flight,omitempty"`
	// Connections (per leader broker) and InFlight (requests pipelined per
	// connection) shape raw mode.
	Connections int `yaml:"connections,omitempty" json:"connections,omitempty"`
	InFlight    int `yaml:"inflight,omitempty" json:"inflight,omitempty"`
	BrokerPID   int `yaml:"broker_pid,omitempty" json:"broker_pid,omitempty"`
}

// DefaultWorkload returns the defaults the CLI starts from: 1 KiB records to
// 6 partitions with acks=all for 10 s at max throughput. Safe to call
// concurrently.
func DefaultWorkload() Workload {
	return Workload{
		Mode:              ModeProduce,
		Brokers:           []string{"127.0.0.1:9092"},
		Topic:             "sluice-bench",
		Partitions:        6,
		ReplicationFactor: 1,
		CreateTopic:       true,
		RecordSize:        1024,
		Producers:         1,
		Consumers:         1,
		Acks:              "all",
		Linger:            10 * time.Millisecond, // kgo's default, stated so reports show it
		BatchBytes:        1 << 20,
		Compression:       "none",
		Duration:          10 * time.Second,
		Connections:       4,
		InFlight:          8,
	}
}

// Validate reports the first problem that would make the workload
// meaningless, before any connection is made. Safe to call concurrently.
func (w *Workload) Validate() error {
	switch w.Mode {
	case ModeProduce, ModeConsume, ModeE2E, ModeRaw:
	default:
		return fmt.Errorf("unknown mode %q (want produce, consume, e2e or raw)", w.Mode)
	}
	if len(w.Brokers) == 0 || w.Topic == "" {
		return errors.New("brokers and topic are required")
	}
	if w.Partitions < 1 || w.Producers < 1 || w.Consumers < 1 {
		return errors.New("partitions, producers and consumers must be at least 1")
	}
	if w.Duration <= 0 && w.Records <= 0 && w.Mode != ModeConsume {
		return errors.New("need a duration or a record count")
	}
	if w.Rate < 0 || w.Keys < 0 || w.BatchBytes < 0 {
		return errors.New("rate, keys and batch bytes must not be negative")
	}
	if _, err := w.sizes(); err != nil {
		return err
	}
	acks, err := parseAcks(w.Acks)
	if err != nil {
		return err
	}
	if _, err := parseCompression(w.Compression); err != nil {
		return err
	}
	if w.Idempotent != nil && *w.Idempotent && acks != -1 {
		return errors.New("idempotence requires acks=all (as in Kafka)")
	}
	switch w.Mode {
	case ModeE2E:
		if sz, _ := w.sizes(); sz.min() < e2eStampLen {
			return fmt.Errorf("e2e records must be at least %d bytes to carry the send time", e2eStampLen)
		}
	case ModeRaw:
		if acks == 0 {
			return errors.New("raw mode needs acks 1 or all: it counts acknowledged records")
		}
		if w.Connections < 1 || w.InFlight < 1 || w.BatchBytes < 1 {
			return errors.New("raw mode needs connections, inflight and batch bytes of at least 1")
		}
		if strings.ToLower(w.Compression) != "none" && w.Compression != "" {
			return errors.New("raw mode sends uncompressed batches")
		}
	}
	return nil
}

// idempotent resolves the nil default the way Kafka does.
func (w *Workload) idempotent() bool {
	if w.Idempotent != nil {
		return *w.Idempotent
	}
	a, _ := parseAcks(w.Acks)
	return a == -1
}

func (w *Workload) sizes() (sizeDist, error) {
	if w.SizeDist != "" {
		return parseSizeDist(w.SizeDist)
	}
	if w.RecordSize < 0 {
		return sizeDist{}, errors.New("record size must not be negative")
	}
	return fixedSize(w.RecordSize), nil
}

// parseAcks maps Kafka's acks spellings to the wire value.
func parseAcks(s string) (int16, error) {
	switch strings.ToLower(s) {
	case "all", "-1", "":
		return -1, nil
	case "1", "leader":
		return 1, nil
	case "0", "none":
		return 0, nil
	}
	return 0, fmt.Errorf("acks %q: want 0, 1 or all", s)
}

func kgoAcks(a int16) kgo.Acks {
	switch a {
	case 0:
		return kgo.NoAck()
	case 1:
		return kgo.LeaderAck()
	}
	return kgo.AllISRAcks()
}

func parseCompression(s string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(s) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", s)
}
