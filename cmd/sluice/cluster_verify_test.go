package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// verifyAcks consumes every partition of topic from offset 0 to its high
// watermark (from the leaders, as kgo routes) and checks: offsets are
// contiguous from 0 (no gap, no duplicate offset), every record is one the
// producer wrote and no id appears twice, and every acknowledged record is
// at its acknowledged offset. It returns the number of records read.
func (c *procCluster) verifyAcks(topic string, parts int, lp *loadProducer) int {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(c.client()).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("ListEndOffsets %s: %v", topic, err)
	}
	hw := make([]int64, parts)
	ends.Each(func(o kadm.ListedOffset) { hw[o.Partition] = o.Offset })
	offs := map[string]map[int32]kgo.Offset{topic: {}}
	left := 0
	for p := range hw {
		if hw[p] > 0 {
			offs[topic][int32(p)] = kgo.NewOffset().At(0)
			left++
		}
	}
	// at[p][off] is the id at that offset.
	at := make([][]int64, parts)
	if left > 0 {
		cl := c.client(kgo.ConsumePartitions(offs), kgo.FetchMaxWait(200*time.Millisecond))
		for left > 0 {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consuming %s: not all partitions read to their high watermarks %v within 120s", topic, hw)
			}
			fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", tp, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				p := r.Partition
				if r.Offset >= hw[p] {
					return
				}
				if r.Offset != int64(len(at[p])) {
					t.Fatalf("%s[%d]: record at offset %d follows offset %d: offsets not contiguous", topic, p, r.Offset, len(at[p])-1)
				}
				at[p] = append(at[p], parseID(r.Value))
				if int64(len(at[p])) == hw[p] {
					left--
				}
			})
		}
	}
	// Every record read is ours, once.
	// where[id] is 1 + the partition and offset<<8 it was read at (a
	// slice, not a map: soaks read millions of records).
	where := make([]int64, lp.next.Load()+1)
	total, dups := 0, 0
	for p, ids := range at {
		for off, id := range ids {
			if id < 0 || id >= int64(len(where)) {
				t.Fatalf("%s[%d]@%d holds a record the producer never wrote (id %d)", topic, p, off, id)
			}
			if prev := where[id]; prev != 0 {
				if dups++; dups <= 10 {
					t.Errorf("id %d is twice in the log: at %s[%d]@%d and %s[%d]@%d (idempotence broken)",
						id, topic, (prev-1)&0xff, (prev-1)>>8, topic, p, off)
				}
			}
			where[id] = 1 + (int64(off)<<8 | int64(p))
			total++
		}
	}
	if dups > 0 {
		t.Fatalf("%d records are in the log more than once", dups)
	}
	// Every acknowledged record is where its acknowledgement said.
	lp.mu.Lock()
	acked := append([]ackRec(nil), lp.acked...)
	lp.mu.Unlock()
	bad := 0
	for _, a := range acked {
		got := int64(-2)
		if a.part >= 0 && int(a.part) < parts && a.off >= 0 && a.off < int64(len(at[a.part])) {
			got = at[a.part][a.off]
		}
		if got != a.id {
			if bad < 10 {
				t.Errorf("acknowledged id %d at %s[%d]@%d: the log has id %d there (-2: offset past the high watermark %d)",
					a.id, topic, a.part, a.off, got, hw[max(a.part, 0)])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d acknowledged records are not at their acknowledged offsets", bad, len(acked))
	}
	return total
}

// fetchRaw sends node i a consumer Fetch (v12, replica id -1, no session)
// for topic[p] from offset and returns the high watermark it reports and
// the whole record batches in the answer.
func (c *procCluster) fetchRaw(i int, topic string, p int32, offset int64) (int64, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 4 << 20
	req.SessionID, req.SessionEpoch = 0, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.CurrentLeaderEpoch, rp.LogStartOffset = p, offset, -1, -1
	rp.LastFetchedEpoch, rp.PartitionMaxBytes = -1, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kr, err := c.direct[i].SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	resp := kr.(*kmsg.FetchResponse)
	if resp.Version != 12 {
		return 0, nil, fmt.Errorf("fetch answered at v%d, want v12", resp.Version)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, nil, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, nil, fmt.Errorf("fetch answer has %d topics", len(resp.Topics))
	}
	rp2 := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp2.ErrorCode); err != nil {
		return 0, nil, err
	}
	return rp2.HighWatermark, wholeBatches(rp2.RecordBatches), nil
}

// wholeBatches drops a partial batch at the end of a fetch answer.
func wholeBatches(b []byte) []byte {
	n := 0
	for len(b)-n >= 12 {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[n+8:])))
		if size < 61 || len(b)-n < size {
			break
		}
		n += size
	}
	return b[:n]
}

// batchEnds calls fn with each batch's base offset, next offset and bytes.
func batchEnds(b []byte, fn func(base, next int64, batch []byte)) {
	for len(b) >= 61 {
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		base := int64(binary.BigEndian.Uint64(b))
		fn(base, base+int64(int32(binary.BigEndian.Uint32(b[23:])))+1, b[:size])
		b = b[size:]
	}
}

// replicaBytes reads topic[p] from node i, from offset 0 up to hw.
func (c *procCluster) replicaBytes(i int, topic string, p int32, hw int64) ([]byte, error) {
	var out []byte
	var next int64
	for stuck := 0; next < hw; {
		_, bs, err := c.fetchRaw(i, topic, p, next)
		if err != nil {
			return nil, fmt.Errorf("fetch from %d: %w", next, err)
		}
		was := next
		batchEnds(bs, func(base, end int64, batch []byte) {
			if end > next && next < hw {
				out = append(out, batch...)
				next = end
			}
		})
		if next == was {
			// Nothing new: an empty answer below the HW, or only batches
			// ending before the offset asked for.
			if stuck++; stuck > 50 {
				return nil, fmt.Errorf("fetch at offset %d (below high watermark %d) returned no batch past it (%d bytes)", next, hw, len(bs))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return out, nil
}

// compareReplicas waits until every node reports the same high watermark
// for each partition of topic, then checks that the replicas are
// byte-identical up to it. It returns the total bytes compared per node.
func (c *procCluster) compareReplicas(topic string, parts int) int {
	t := c.t
	t.Helper()
	total := 0
	for p := int32(0); p < int32(parts); p++ {
		hws := make([]int64, c.size())
		deadline := time.Now().Add(60 * time.Second)
		for {
			same, why := true, ""
			for i := range c.nodes {
				hw, _, err := c.fetchRaw(i, topic, p, 0)
				if err != nil {
					same, why = false, fmt.Sprintf("node %d: %v", i+1, err)
					break
				}
				hws[i] = hw
				same = same && hw == hws[0]
			}
			if same {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s[%d]: high watermarks did not converge within 60s: %v %s", topic, p, hws, why)
			}
			time.Sleep(50 * time.Millisecond)
		}
		var want []byte
		for i := range c.nodes {
			got, err := c.replicaBytes(i, topic, p, hws[0])
			if err != nil {
				t.Fatalf("%s[%d] on node %d: %v", topic, p, i+1, err)
			}
			if i == 0 {
				want = got
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s[%d]: node %d's replica (%d bytes) differs from node 1's (%d bytes) below high watermark %d: %s",
					topic, p, i+1, len(got), len(want), hws[0], firstDiff(want, got))
			}
		}
		total += len(want)
	}
	return total
}

// firstDiff describes the first batch where two replicas differ.
func firstDiff(a, b []byte) string {
	type batch struct {
		base, next int64
		bytes      []byte
	}
	var as, bs []batch
	batchEnds(a, func(base, next int64, x []byte) { as = append(as, batch{base, next, x}) })
	batchEnds(b, func(base, next int64, x []byte) { bs = append(bs, batch{base, next, x}) })
	for k := 0; k < min(len(as), len(bs)); k++ {
		if !bytes.Equal(as[k].bytes, bs[k].bytes) {
			return fmt.Sprintf("batch %d: offsets %d-%d (%d bytes, leader epoch %d) vs %d-%d (%d bytes, leader epoch %d)",
				k, as[k].base, as[k].next-1, len(as[k].bytes), int32(binary.BigEndian.Uint32(as[k].bytes[12:])),
				bs[k].base, bs[k].next-1, len(bs[k].bytes), int32(binary.BigEndian.Uint32(bs[k].bytes[12:])))
		}
	}
	return fmt.Sprintf("%d vs %d batches, the common ones equal", len(as), len(bs))
}
