package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/group"
	"github.com/sluicemq/sluice/segstore"
)

// commitFetchClient retries coordinator errors only briefly, so a broker
// that keeps answering COORDINATOR_NOT_AVAILABLE fails the test quickly.
func commitFetchClient(t *testing.T, n *Node) *kgo.Client {
	return newClient(t, n, kgo.RetryTimeout(3*time.Second))
}

func standaloneCommit(t *testing.T, cl *kgo.Client, groupID, topic string, offset int64, metadata *string) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = groupID, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset, rp.Metadata = offset, metadata
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func fetchCommitted(t *testing.T, cl *kgo.Client, groupID, topic string) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = groupID
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		return -1, resp.ErrorCode
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

// TestGroupOffsetsTopicKeepsItsPartitionCount: offsets.topic.num.partitions
// only sizes __consumer_offsets when it is created (Kafka). A restart with
// another value must still find every group where its records are: neither
// a silently missing offset (the group hashed to another, loaded partition)
// nor a coordinator that never becomes available (partitions past the
// configured count failing to load).
func TestGroupOffsetsTopicKeepsItsPartitionCount(t *testing.T) {
	f := func(created, restarted int32) {
		t.Helper()
		// A group that lands on different partitions under the two counts,
		// one that exists under both: the lookup then succeeds on the wrong
		// partition and finds nothing.
		var groupID string
		for i := 0; i < 1000 && groupID == ""; i++ {
			id := "g" + strconv.Itoa(i)
			a, b := group.PartitionFor(id, created), group.PartitionFor(id, restarted)
			if a != b && a < min(created, restarted) && b < min(created, restarted) {
				groupID = id
			}
		}
		if groupID == "" {
			t.Fatal("no group id moves between the partition counts")
		}
		dir := t.TempDir()
		n := startNode(t, dir, func(c *Config) { c.Groups.Partitions = created })
		if _, err := newAdmin(t, n).CreateTopic(testCtx(t), 1, 1, nil, "t"); err != nil {
			t.Fatal(err)
		}
		if code := standaloneCommit(t, commitFetchClient(t, n), groupID, "t", 42, nil); code != 0 {
			t.Fatalf("commit: %v", kerr.ErrorForCode(code))
		}
		n.Close(context.Background())

		n = startNode(t, dir, func(c *Config) { c.Groups.Partitions = restarted })
		off, code := fetchCommitted(t, commitFetchClient(t, n), groupID, "t")
		if code != 0 || off != 42 {
			t.Fatalf("created with %d partitions, restarted configured with %d: group %q fetches offset %d, %v; want 42",
				created, restarted, groupID, off, kerr.ErrorForCode(code))
		}
	}
	f(3, 5)
	f(5, 3)
}

// TestGroupCommitTooLarge: a commit whose record exceeds the offsets topic's
// max.message.bytes answers INVALID_COMMIT_OFFSET_SIZE, as Kafka maps
// MESSAGE_TOO_LARGE, not the retriable COORDINATOR_NOT_AVAILABLE a client
// would retry for ever; the previous offset stays.
func TestGroupCommitTooLarge(t *testing.T) {
	n := startNode(t, "", func(c *Config) { c.Log.MaxMessageBytes = 2000 })
	if _, err := newAdmin(t, n).CreateTopic(testCtx(t), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	cl := commitFetchClient(t, n)
	if code := standaloneCommit(t, cl, "big", "t", 7, nil); code != 0 {
		t.Fatalf("small commit: %v", kerr.ErrorForCode(code))
	}
	md := strings.Repeat("m", 3000) // under offset.metadata.max.bytes, over max.message.bytes
	if code := standaloneCommit(t, cl, "big", "t", 8, &md); code != kerr.InvalidCommitOffsetSize.Code {
		t.Fatalf("oversized commit: %v, want INVALID_COMMIT_OFFSET_SIZE", kerr.ErrorForCode(code))
	}
	if off, code := fetchCommitted(t, cl, "big", "t"); code != 0 || off != 7 {
		t.Fatalf("after the rejected commit: offset %d, %v; want 7", off, kerr.ErrorForCode(code))
	}
}

// TestCoordinatorErr: failed appends reach the coordinator as the Kafka
// error it maps (Kafka's GroupMetadataManager rules), with the original
// error kept for the log; errors Kafka has no code for stay as they are
// (the coordinator answers COORDINATOR_NOT_AVAILABLE).
func TestCoordinatorErr(t *testing.T) {
	f := func(in error, want *kerr.Error) {
		t.Helper()
		out := coordinatorErr(in)
		if !errors.Is(out, in) {
			t.Fatalf("%v: the original error is lost: %v", in, out)
		}
		var ke *kerr.Error
		got := errors.As(out, &ke)
		if want == nil && got {
			t.Fatalf("%v: mapped to %v, want no Kafka error", in, ke)
		}
		if want != nil && (!got || ke != want) {
			t.Fatalf("%v: mapped to %v, want %v", in, ke, want)
		}
	}
	f(fmt.Errorf("append: %w", segstore.ErrRecordTooLarge), kerr.MessageTooLarge)
	f(fmt.Errorf("write: %w", segstore.ErrStorage), kerr.KafkaStorageError)
	f(segstore.ErrClosed, kerr.NotLeaderForPartition)
	f(errors.New(offsetsTopic+"-3 is not available"), nil)
}
