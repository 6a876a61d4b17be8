package perf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ensureTopic creates the topic when asked and waits until every partition
// has a leader, because a benchmark that starts while leaders are still being
// elected measures the election. An existing topic is used as it is, with a
// warning when its partition count differs from the workload's.
func ensureTopic(ctx context.Context, adm *kadm.Client, w Workload, opts Options) (kadm.TopicDetail, error) {
	if w.CreateTopic {
		resp, err := adm.CreateTopic(ctx, w.Partitions, w.ReplicationFactor, nil, w.Topic)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
		case errors.Is(err, kerr.TopicAlreadyExists):
			opts.logf("topic %s exists; using it as it is", w.Topic)
		default:
			return kadm.TopicDetail{}, fmt.Errorf("create topic %s: %w", w.Topic, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := adm.Metadata(ctx, w.Topic)
		if err != nil {
			return kadm.TopicDetail{}, err
		}
		td, ok := md.Topics[w.Topic]
		if ok && td.Err == nil && len(td.Partitions) > 0 && allLed(td) {
			if int32(len(td.Partitions)) != w.Partitions {
				opts.logf("topic %s has %d partitions, not %d", w.Topic, len(td.Partitions), w.Partitions)
			}
			return td, nil
		}
		if time.Now().After(deadline) {
			if ok && td.Err != nil {
				return kadm.TopicDetail{}, fmt.Errorf("topic %s: %w", w.Topic, td.Err)
			}
			return kadm.TopicDetail{}, fmt.Errorf("topic %s: partitions without a leader after 30 s", w.Topic)
		}
		select {
		case <-ctx.Done():
			return kadm.TopicDetail{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLed(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Leader < 0 || p.Err != nil {
			return false
		}
	}
	return true
}

// endOffsets returns each partition's end offset: where e2e consumers start
// and where a draining consumer may stop.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	return listOffsets(ctx, adm, topic, adm.ListEndOffsets)
}

func startOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	return listOffsets(ctx, adm, topic, adm.ListStartOffsets)
}

func listOffsets(ctx context.Context, adm *kadm.Client, topic string,
	list func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	lo, err := list(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	var firstErr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = fmt.Errorf("list offsets %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out, firstErr
}
