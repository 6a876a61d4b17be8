package group

import (
	"log/slog"
	"time"
)

// Record is one __consumer_offsets record; Value nil is a tombstone.
type Record struct{ Key, Value []byte }

// Log persists records to one partition of __consumer_offsets.
//
// Append must not block; done runs exactly once, from any goroutine (possibly
// synchronously inside Append), when the records are durable (err nil) or
// failed. The coordinator may call Append again from inside done (a failed
// write can start a rebalance that writes the next record), so Append must
// not wait for the goroutine that runs done. Records of one Append are one batch: all durable or none. The
// coordinator issues appends in the order it decided them, so the log order
// matches the order of the state changes; it does not rely on done calls
// arriving in order.
//
// Errors that are *kerr.Error are answered the way Kafka's GroupMetadataManager
// maps produce errors (NOT_LEADER_OR_FOLLOWER and KAFKA_STORAGE_ERROR become
// NOT_COORDINATOR, NOT_ENOUGH_REPLICAS becomes COORDINATOR_NOT_AVAILABLE, ...);
// any other error becomes COORDINATOR_NOT_AVAILABLE, which clients retry.
type Log interface {
	Append(partition int32, recs []Record, done func(err error))
}

// Clock is time for timers; tests use a fake.
type Clock interface {
	Now() time.Time
	// AfterFunc runs f on its own goroutine (or the fake clock's) after d.
	// It must not call f synchronously.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc; Stop reports whether it prevented the call.
type Timer interface{ Stop() bool }

// Config is the coordinator's part of the broker configuration, under
// Kafka's property names.
type Config struct {
	Partitions             int32         // offsets.topic.num.partitions, 50
	MinSessionTimeout      time.Duration // group.min.session.timeout.ms, 6s
	MaxSessionTimeout      time.Duration // group.max.session.timeout.ms, 30m
	InitialRebalanceDelay  time.Duration // group.initial.rebalance.delay.ms, 3s
	MaxSize                int           // group.max.size, 0 = unlimited (Kafka: Int.MaxValue)
	OffsetsRetention       time.Duration // offsets.retention.minutes, 7 days
	RetentionCheckInterval time.Duration // offsets.retention.check.interval.ms, 10m
	MaxMetadataSize        int           // offset.metadata.max.bytes, 4096 (counted in UTF-16 units, as Java does)
	// TopicExists reports whether a topic partition exists (OffsetCommit and
	// OffsetDelete answer UNKNOWN_TOPIC_OR_PARTITION otherwise). nil: every
	// partition with a non-negative index exists.
	TopicExists func(topic string, partition int32) bool
	Clock       Clock        // nil: real time
	Logger      *slog.Logger // nil: slog.Default()
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:             50,
		MinSessionTimeout:      6 * time.Second,
		MaxSessionTimeout:      30 * time.Minute,
		InitialRebalanceDelay:  3 * time.Second,
		OffsetsRetention:       7 * 24 * time.Hour,
		RetentionCheckInterval: 10 * time.Minute,
		MaxMetadataSize:        4096,
	}
}

// Client is where a request came from: the request header's client id and
// the peer address. Kafka reports the host in DescribeGroups as
// InetAddress.toString, i.e. "/" + IP, so the node should pass that form.
type Client struct{ ID, Host string }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
