package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicemq/sluice/group"
	"github.com/sluicemq/sluice/netpoll"
	"github.com/sluicemq/sluice/segstore"
	"github.com/sluicemq/sluice/tuning"
)

// Config configures a Node. Start from DefaultConfig: its values are Kafka's
// defaults (and sluice's for sluice-only keys). Field comments name the Kafka
// property each one stands for.
type Config struct {
	NodeID int32 // node.id (also broker.id)
	// Listen is the address the Kafka listener binds (listeners), host:port.
	// Port 0 picks a free port; Addr reports it.
	Listen string
	// Advertised is what Metadata tells clients (advertised.listeners),
	// host:port. Empty: Listen's host (or, for a wildcard host, this
	// machine's first non-loopback address) with the bound port.
	Advertised string
	// DataDir is log.dirs (one directory).
	DataDir string
	// ClusterID is used when the data dir has no meta.properties yet; empty
	// generates one. An existing meta.properties always wins.
	ClusterID string
	// Rack is broker.rack (empty: none).
	Rack string

	NumPartitions            int32 // num.partitions, default 1
	DefaultReplicationFactor int16 // default.replication.factor, default 1
	AutoCreateTopics         bool  // auto.create.topics.enable, default true
	DeleteTopicEnable        bool  // delete.topic.enable, default true
	MinInsyncReplicas        int   // min.insync.replicas, default 1
	CleanupPolicy            string

	// Log holds the broker-wide defaults of topic configs: log.segment.bytes,
	// log.roll.ms, log.retention.ms / .bytes, log.index.interval.bytes,
	// message.max.bytes, log.message.timestamp.type, log.cleaner.*
	// (delete.retention.ms, min.cleanable.ratio, min/max.compaction.lag.ms).
	// Its Cleanup follows CleanupPolicy.
	Log segstore.LogConfig

	CleanerEnable      bool          // log.cleaner.enable, default true
	CleanerBackoff     time.Duration // log.cleaner.backoff.ms, default 15s
	CleanerDedupeBytes int64         // log.cleaner.dedupe.buffer.size, default 128 MiB
	// Idempotent producers' state is forgotten this long after their last
	// write: producer.id.expiration.ms (1 day), checked every
	// producer.id.expiration.check.interval.ms (10 min).
	ProducerIDExpiration      time.Duration
	ProducerIDExpirationCheck time.Duration

	Flush           segstore.FlushPolicy // log.flush.policy (sluice), default ack
	FlushMessages   int64                // log.flush.interval.messages
	FlushEvery      time.Duration        // log.flush.interval.ms
	CheckpointEvery time.Duration        // log.flush.offset.checkpoint.interval.ms
	IOEngine        string               // io.engine (sluice): auto, uring, sync
	// NumaPinning is numa.pinning (sluice): auto pins event loops and
	// committers per the CPU/NUMA plan (pinning.go), off pins nothing.
	NumaPinning tuning.PinningMode
	numa        numaSeams // tests: fake /sys tree, failing pin

	// Groups configures the group coordinator: offsets.topic.num.partitions,
	// group.min/max.session.timeout.ms, group.initial.rebalance.delay.ms,
	// group.max.size, offsets.retention.minutes,
	// offsets.retention.check.interval.ms, offset.metadata.max.bytes.
	Groups group.Config
	// OffsetsSegmentBytes is offsets.topic.segment.bytes (100 MiB).
	OffsetsSegmentBytes int64

	// Cluster is nil in standalone mode (config_cluster.go).
	Cluster *ClusterConfig

	// Net configures the listener (socket.request.max.bytes, queued
	// requests, event loops).
	Net netpoll.Config

	// Metrics receives the broker's metrics; nil makes a private set.
	Metrics *metrics.Set
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultConfig returns Kafka's defaults with sluice's zero-config listener
// (127.0.0.1:9092) and data directory (./sluice-data).
func DefaultConfig() Config {
	return Config{
		NodeID:                    1,
		Listen:                    "127.0.0.1:9092",
		DataDir:                   "sluice-data",
		NumPartitions:             1,
		DefaultReplicationFactor:  1,
		AutoCreateTopics:          true,
		DeleteTopicEnable:         true,
		MinInsyncReplicas:         1,
		CleanupPolicy:             "delete",
		CleanerEnable:             true,
		CleanerBackoff:            segstore.DefaultCleanerBackoff,
		CleanerDedupeBytes:        segstore.DefaultDedupeBufferBytes,
		ProducerIDExpiration:      segstore.DefaultProducerIDExpiration,
		ProducerIDExpirationCheck: segstore.DefaultProducerIDExpirationCheckEvery,
		Log:                       segstore.DefaultLogConfig(),
		Flush:                     segstore.FlushAck,
		CheckpointEvery:           time.Minute,
		IOEngine:                  "auto",
		NumaPinning:               tuning.PinningAuto,
		Groups:                    group.DefaultConfig(),
		OffsetsSegmentBytes:       100 << 20,
	}
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("node: log.dirs is empty")
	}
	if _, _, err := splitHostPort(c.Listen); err != nil {
		return fmt.Errorf("node: listeners=%q: %w", c.Listen, err)
	}
	if c.Advertised != "" {
		host, port, err := splitHostPort(c.Advertised)
		if err != nil || port == 0 {
			return fmt.Errorf("node: advertised.listeners=%q: want host:port with a port", c.Advertised)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("node: advertised.listeners=%q: clients cannot connect to %s; name a reachable host (or leave the host empty to use this machine's address)", c.Advertised, host)
		}
	}
	if c.NumPartitions < 1 {
		return fmt.Errorf("node: num.partitions=%d: must be at least 1", c.NumPartitions)
	}
	if c.DefaultReplicationFactor < 1 {
		return fmt.Errorf("node: default.replication.factor=%d: must be at least 1", c.DefaultReplicationFactor)
	}
	if c.MinInsyncReplicas < 1 {
		return fmt.Errorf("node: min.insync.replicas=%d: must be at least 1", c.MinInsyncReplicas)
	}
	if c.Flush == "" {
		c.Flush = segstore.FlushAck
	}
	if _, err := segstore.ParseFlushPolicy(string(c.Flush)); err != nil {
		return err
	}
	if c.CleanupPolicy == "" {
		c.CleanupPolicy = "delete"
	}
	if err := validateCleanupPolicy(c.CleanupPolicy); err != nil {
		return fmt.Errorf("node: log.cleanup.policy: %w", err)
	}
	c.Log.Cleanup, _ = segstore.ParseCleanupPolicy(c.CleanupPolicy)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Net.Logger == nil {
		c.Net.Logger = c.Logger
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewSet()
	}
	if c.IOEngine == "" {
		c.IOEngine = "auto"
	}
	pm, err := tuning.ParsePinningMode(string(c.NumaPinning))
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	c.NumaPinning = pm
	if c.Groups.Partitions < 1 {
		return fmt.Errorf("node: offsets.topic.num.partitions=%d: must be at least 1", c.Groups.Partitions)
	}
	if c.OffsetsSegmentBytes <= 0 {
		c.OffsetsSegmentBytes = 100 << 20
	}
	if c.Cluster != nil {
		return c.Cluster.validate(c.NodeID)
	}
	return nil
}

// splitHostPort accepts host:port, also with a Kafka listener name prefix
// (PLAINTEXT://host:port).
func splitHostPort(s string) (string, int, error) {
	host, ps, err := net.SplitHostPort(stripScheme(s))
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return host, port, nil
}

func stripScheme(s string) string {
	for i := 0; i+2 < len(s); i++ {
		if s[i:i+3] == "://" {
			return s[i+3:]
		}
	}
	return s
}
