package segstore

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// Offset checkpoints that other packages own (node's
// replication-offset-checkpoint), in the format of the store's own
// (checkpoint.go): version 0, entry count, "topic partition offset" lines,
// replaced atomically.

// TopicPartition names a partition in an offset checkpoint.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// WriteOffsetCheckpoint replaces the file at path with offsets, sorted by
// topic then partition: write to path.tmp, fsync, rename, fsync the
// directory. Topics must be valid names (ValidateTopic: no spaces or line
// breaks), else the file would not read back. Safe for concurrent use on
// different paths.
func WriteOffsetCheckpoint(fs vfs.FS, path string, offsets map[TopicPartition]int64) error {
	keys := make([]TopicPartition, 0, len(offsets))
	for k := range offsets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Topic != keys[j].Topic {
			return keys[i].Topic < keys[j].Topic
		}
		return keys[i].Partition < keys[j].Partition
	})
	lines := make([][]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, []string{k.Topic, strconv.Itoa(int(k.Partition)), strconv.FormatInt(offsets[k], 10)})
	}
	return writeCheckpoint(fs, path, lines)
}

// ReadOffsetCheckpoint reads what WriteOffsetCheckpoint (or Kafka) wrote. A
// missing file is an empty map; a malformed one (unknown version, wrong
// count, a line without three fields, a partition or offset that is not a
// non-negative integer) is an error naming the file, and nothing is
// returned. A pair listed twice keeps its last offset.
func ReadOffsetCheckpoint(fs vfs.FS, path string) (map[TopicPartition]int64, error) {
	m, err := readOffsets(fs, path)
	if err != nil {
		return nil, err
	}
	out := make(map[TopicPartition]int64, len(m))
	for k, v := range m {
		if k.partition < 0 {
			return nil, fmt.Errorf("%s: bad entry for %q: partition %d", path, k.topic, k.partition)
		}
		out[TopicPartition{k.topic, k.partition}] = v
	}
	return out, nil
}
