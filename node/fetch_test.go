package node

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchConn is a hand-driven Kafka connection, so tests pick the exact
// request version and fetch session fields.
type fetchConn struct {
	c    net.Conn
	corr int32
}

func dialFetchConn(t testing.TB, n *Node) *fetchConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fetchConn{c: c}
}

// roundTrip sends req at its version and decodes the answer. Safe to call
// from a goroutine other than the test's (it returns errors, not Fatal).
func (fc *fetchConn) roundTrip(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	fc.corr++
	var f []byte
	f = kbin.AppendInt16(f, req.Key())
	f = kbin.AppendInt16(f, req.GetVersion())
	f = kbin.AppendInt32(f, fc.corr)
	f = kbin.AppendNullableString(f, ptr("fetch-test"))
	if req.IsFlexible() {
		f = append(f, 0)
	}
	f = req.AppendTo(f)
	fc.c.SetDeadline(time.Now().Add(timeout))
	if _, err := fc.c.Write(append(kbin.AppendInt32(nil, int32(len(f))), f...)); err != nil {
		return nil, err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(fc.c, hdr[:]); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != fc.corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, fc.corr)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-4)
	if _, err := io.ReadFull(fc.c, body); err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() {
		body = body[1:]
	}
	return resp, resp.ReadFrom(body)
}

func (fc *fetchConn) fetch(t testing.TB, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	resp, err := fc.roundTrip(req, 30*time.Second)
	if err != nil {
		t.Fatalf("fetch v%d: %v", req.Version, err)
	}
	return resp.(*kmsg.FetchResponse)
}

// produce appends one batch to topic/partition with acks=-1 and returns the
// base offset.
func (fc *fetchConn) produce(t testing.TB, topic string, partition int32, batch []byte) int64 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := fc.roundTrip(req, 30*time.Second)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("produce %s-%d: %v", topic, partition, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.BaseOffset
}

func newFetchReq(version int16, maxWaitMs, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = version, maxWaitMs, minBytes, 50<<20
	return req
}

// addFetchPartition appends a partition to req (by name and id: the version
// decides which goes on the wire).
func addFetchPartition(req *kmsg.FetchRequest, n *Node, topicName string, partition int32, offset int64, maxBytes int32) {
	var id [16]byte
	if t := n.reg.get(topicName); t != nil {
		id = t.id
	}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, maxBytes
	for i := range req.Topics {
		if req.Topics[i].Topic == topicName {
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
			return
		}
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topicName, id
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
}

// fetchedPartitions flattens a response into "topic/partition" -> partition
// answer (topics named by id are mapped back to names through n).
func fetchedPartitions(n *Node, resp *kmsg.FetchResponse) map[string]kmsg.FetchResponseTopicPartition {
	out := map[string]kmsg.FetchResponseTopicPartition{}
	for _, rt := range resp.Topics {
		name := rt.Topic
		if resp.Version >= 13 {
			name = "?"
			if t := n.reg.getByID(rt.TopicID); t != nil {
				name = t.name
			}
		}
		for _, rp := range rt.Partitions {
			out[fmt.Sprintf("%s/%d", name, rp.Partition)] = rp
		}
	}
	return out
}

func createFetchTopic(t testing.TB, n *Node, name string, partitions int32) {
	t.Helper()
	res, err := newAdmin(t, n).CreateTopic(testCtx(t), partitions, 1, nil, name)
	if err != nil || res.Err != nil {
		t.Fatalf("create %s: %v %v", name, err, res.Err)
	}
}

// Compression codecs of the v2 batch attributes.
const (
	codecNone int8 = iota
	codecGzip
	codecSnappy
	codecLZ4
	codecZstd
)

// makeTestBatch encodes a v2 RecordBatch of values (null keys), compressed
// with codec, with base offset 0 and no leader epoch, as a producer sends it.
func makeTestBatch(t testing.TB, codec int8, values ...[]byte) []byte {
	t.Helper()
	var recs []byte
	for i, v := range values {
		var body []byte
		body = append(body, 0)                    // attributes
		body = kbin.AppendVarlong(body, int64(i)) // timestamp delta
		body = kbin.AppendVarint(body, int32(i))  // offset delta
		body = kbin.AppendVarint(body, -1)        // null key
		body = kbin.AppendVarint(body, int32(len(v)))
		body = append(body, v...)
		body = kbin.AppendVarint(body, 0) // no headers
		recs = kbin.AppendVarint(recs, int32(len(body)))
		recs = append(recs, body...)
	}
	switch codec {
	case codecGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(recs)
		w.Close()
		recs = buf.Bytes()
	case codecSnappy:
		recs = s2.EncodeSnappy(nil, recs)
	case codecLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		w.Write(recs)
		w.Close()
		recs = buf.Bytes()
	case codecZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		recs = enc.EncodeAll(recs, nil)
		enc.Close()
	}
	ts := time.Now().UnixMilli()
	b := kbin.AppendInt64(nil, 0) // base offset
	b = kbin.AppendInt32(b, 0)    // batch length, set below
	b = kbin.AppendInt32(b, -1)   // partition leader epoch
	b = append(b, 2)              // magic
	b = kbin.AppendInt32(b, 0)    // crc, set below
	b = kbin.AppendInt16(b, int16(codec))
	b = kbin.AppendInt32(b, int32(len(values)-1))
	b = kbin.AppendInt64(b, ts)
	b = kbin.AppendInt64(b, ts+int64(len(values)-1))
	b = kbin.AppendInt64(b, -1) // producer id
	b = kbin.AppendInt16(b, -1) // producer epoch
	b = kbin.AppendInt32(b, -1) // base sequence
	b = kbin.AppendInt32(b, int32(len(values)))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// splitBatches cuts a record set into its batches.
func splitBatches(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d trailing bytes", len(b))
		}
		n := 12 + int(binary.BigEndian.Uint32(b[8:]))
		if n > len(b) {
			t.Fatalf("partial batch: %d of %d bytes", len(b), n)
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func waitParked(t testing.TB, n *Node, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.fetch.count(true) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches parked, want %d", n.fetch.count(true), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// (a) Many records over many partitions with each acks setting, consumed back
// complete and in order by franz-go.
func TestFetchConsumesEverything(t *testing.T) {
	total := 1_000_000
	if testing.Short() {
		total = 100_000
	}
	const parts = 12
	n := startNode(t, "", nil)
	for _, acks := range []kgo.Acks{kgo.AllISRAcks(), kgo.LeaderAck(), kgo.NoAck()} {
		name := map[kgo.Acks]string{kgo.AllISRAcks(): "acks=all", kgo.LeaderAck(): "acks=1", kgo.NoAck(): "acks=0"}[acks]
		t.Run(name, func(t *testing.T) {
			topic := "all-" + name[5:]
			if name == "acks=all" {
				topic = "all-all"
			}
			createFetchTopic(t, n, topic, parts)
			ctx := testCtx(t)
			opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.RequiredAcks(acks), kgo.MaxBufferedRecords(200_000), kgo.ProducerLinger(2 * time.Millisecond)}
			if acks != kgo.AllISRAcks() {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			start := time.Now()
			pcl := newClient(t, n, opts...)
			var failed atomic.Int64
			var firstErr atomic.Value
			done := func(_ *kgo.Record, err error) {
				if err != nil && failed.Add(1) == 1 {
					firstErr.Store(err)
				}
			}
			for i := 0; i < total; i++ {
				v := binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(i/parts))
				pcl.Produce(ctx, &kgo.Record{Partition: int32(i % parts), Value: v}, done)
			}
			if err := pcl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if failed.Load() != 0 {
				t.Fatalf("%d produce errors, first %v", failed.Load(), firstErr.Load())
			}
			produced := time.Since(start)

			// Exact offsets, and (acks=1) a topic subscription starting
			// where ListOffsets says the log starts.
			offsets := map[int32]kgo.Offset{}
			for p := int32(0); p < parts; p++ {
				offsets[p] = kgo.NewOffset().At(0)
			}
			consume := kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets})
			if acks == kgo.LeaderAck() {
				consume = kgo.ConsumeTopics(topic)
			}
			ccl := newClient(t, n, consume, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			next := make([]int64, parts)
			got := 0
			for got < total {
				fs := ccl.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("after %d of %d records: %v", got, total, err)
				}
				fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", tp, p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					if r.Offset != next[r.Partition] {
						t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
					}
					if v := binary.BigEndian.Uint64(r.Value); v != uint64(r.Offset) {
						t.Fatalf("partition %d offset %d holds record %d", r.Partition, r.Offset, v)
					}
					next[r.Partition]++
					got++
				})
			}
			for p, o := range next {
				want := int64(total / parts)
				if p < total%parts {
					want++
				}
				if o != want {
					t.Errorf("partition %d: %d records, want %d", p, o, want)
				}
			}
			t.Logf("%d records: produced in %v, consumed in %v", total, produced, time.Since(start)-produced)
		})
	}
	if st := n.srv.Stats(); st.SendfileBytes < uint64(3*total*8) {
		t.Errorf("only %d bytes went out with sendfile (%d copied)", st.SendfileBytes, st.CopiedFileBytes)
	}
}

// Every segment a fetch pins is released: once the topic is deleted no
// descriptor of its files stays open.
func TestFetchReleasesSegments(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "pin", 2)
	ctx := testCtx(t)
	fc := dialFetchConn(t, n)
	for i := 0; i < 20; i++ {
		fc.produce(t, "pin", int32(i%2), makeTestBatch(t, codecNone, bytes.Repeat([]byte{'p'}, 500)))
	}
	for _, v := range []int16{4, 12, 16} {
		for off := int64(0); off <= 10; off += 3 {
			req := newFetchReq(v, 0, 0)
			addFetchPartition(req, n, "pin", 0, off, 1<<20)
			addFetchPartition(req, n, "pin", 1, off, 1000)
			fc.fetch(t, req)
		}
	}
	// A fetch that found too little parks without holding segments.
	req := newFetchReq(16, 300, 1<<20)
	addFetchPartition(req, n, "pin", 0, 0, 1<<20)
	if p := fetchedPartitions(n, fc.fetch(t, req))["pin/0"]; len(p.RecordBatches) == 0 {
		t.Fatal("the timed-out fetch returned nothing")
	}
	// A response whose connection closes before it is read.
	gone := dialFetchConn(t, n)
	req = newFetchReq(16, 0, 0)
	addFetchPartition(req, n, "pin", 0, 0, 1<<20)
	gone.roundTrip(req, time.Millisecond)
	gone.c.Close()
	ccl := newClient(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"pin": {0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(0)}}))
	for got := 0; got < 20; {
		fs := ccl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		got += fs.NumRecords()
	}
	ccl.Close()
	if _, err := newAdmin(t, n).DeleteTopics(ctx, "pin"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(n.cfg.DataDir, "pin-")
	deadline := time.Now().Add(10 * time.Second)
	for {
		open := 0
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir) {
				open++
			}
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors of the deleted topic's files are still open", open)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// (b) Compressed batches come back byte for byte as produced and stored, and
// franz-go decodes them.
func TestFetchCompressedBatchesByteIdentical(t *testing.T) {
	n := startNode(t, "", nil)
	fc := dialFetchConn(t, n)
	codecs := []struct {
		name  string
		id    int8
		codec kgo.CompressionCodec
	}{
		{"gzip", codecGzip, kgo.GzipCompression()},
		{"snappy", codecSnappy, kgo.SnappyCompression()},
		{"lz4", codecLZ4, kgo.Lz4Compression()},
		{"zstd", codecZstd, kgo.ZstdCompression()},
	}
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			topic := "z-" + cc.name
			createFetchTopic(t, n, topic, 2)
			ctx := testCtx(t)
			// Partition 0: batches franz-go compresses.
			pcl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchCompression(cc.codec), kgo.ProducerLinger(20*time.Millisecond))
			const recs = 300
			for i := 0; i < recs; i++ {
				pcl.Produce(ctx, &kgo.Record{Value: bytes.Repeat([]byte{byte('a' + i%26)}, 50+i%40)}, nil)
			}
			if err := pcl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// Partition 1: batches compressed here, kept to compare with.
			var sent [][]byte
			for b := 0; b < 3; b++ {
				var vals [][]byte
				for i := 0; i < 20; i++ {
					vals = append(vals, []byte(fmt.Sprintf("%s-batch%d-record%d-%s", cc.name, b, i, bytes.Repeat([]byte("x"), i))))
				}
				batch := makeTestBatch(t, cc.id, vals...)
				sent = append(sent, batch)
				fc.produce(t, topic, 1, append([]byte(nil), batch...))
			}

			for _, v := range []int16{4, 12, 16} {
				req := newFetchReq(v, 0, 0)
				addFetchPartition(req, n, topic, 0, 0, 10<<20)
				addFetchPartition(req, n, topic, 1, 0, 10<<20)
				got := fetchedPartitions(n, fc.fetch(t, req))
				p0, p1 := got[topic+"/0"], got[topic+"/1"]
				if p0.ErrorCode != 0 || p1.ErrorCode != 0 {
					t.Fatalf("v%d: errors %d %d", v, p0.ErrorCode, p1.ErrorCode)
				}
				stored, err := os.ReadFile(filepath.Join(n.cfg.DataDir, topic+"-0", "00000000000000000000.log"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p0.RecordBatches, stored) {
					t.Fatalf("v%d: fetched %d bytes differ from the %d stored", v, len(p0.RecordBatches), len(stored))
				}
				for _, b := range splitBatches(t, p0.RecordBatches) {
					if attrs := int8(binary.BigEndian.Uint16(b[21:]) & 7); attrs != cc.id {
						t.Fatalf("v%d: franz-go batch has codec %d, want %d", v, attrs, cc.id)
					}
				}
				back := splitBatches(t, p1.RecordBatches)
				if len(back) != len(sent) {
					t.Fatalf("v%d: %d batches back, %d sent", v, len(back), len(sent))
				}
				var off int64
				for i := range back {
					if base := int64(binary.BigEndian.Uint64(back[i])); base != off {
						t.Fatalf("v%d: batch %d base offset %d, want %d", v, i, base, off)
					}
					off += 20
					// The broker assigns the base offset and stamps the
					// leader epoch; every other byte is the producer's.
					if !bytes.Equal(back[i][8:12], sent[i][8:12]) || !bytes.Equal(back[i][16:], sent[i][16:]) {
						t.Fatalf("v%d: batch %d differs from the one produced", v, i)
					}
				}
			}

			ccl := newClient(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
				topic: {0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(0)}}))
			count := map[int32]int{}
			for count[0] < recs || count[1] < 60 {
				fs := ccl.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("consumed %v: %v", count, ctx.Err())
				}
				fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", tp, p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					i := count[r.Partition]
					var want []byte
					if r.Partition == 0 {
						want = bytes.Repeat([]byte{byte('a' + i%26)}, 50+i%40)
					} else {
						want = []byte(fmt.Sprintf("%s-batch%d-record%d-%s", cc.name, i/20, i%20, bytes.Repeat([]byte("x"), i%20)))
					}
					if r.Offset != int64(i) || !bytes.Equal(r.Value, want) {
						t.Fatalf("partition %d record %d: offset %d value %q", r.Partition, i, r.Offset, r.Value)
					}
					count[r.Partition]++
				})
			}
		})
	}
}

// (c) A parked fetch answers as soon as a produce lands; with nothing
// produced it answers empty after MaxWait.
func TestFetchLongPoll(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "lp", 2)
	ctx := testCtx(t)
	pcl := newClient(t, n, kgo.DefaultProduceTopic("lp"), kgo.RecordPartitioner(kgo.ManualPartitioner()))

	for _, v := range []int16{4, 12, 16} {
		fc := dialFetchConn(t, n)
		req := newFetchReq(v, 20000, 1)
		off := n.reg.partition("lp", 0).hw.Load() // after the records of earlier rounds
		addFetchPartition(req, n, "lp", 0, off, 1<<20)
		addFetchPartition(req, n, "lp", 1, 0, 1<<20)
		type result struct {
			resp kmsg.Response
			err  error
			took time.Duration
		}
		ch := make(chan result, 1)
		start := time.Now()
		go func() {
			resp, err := fc.roundTrip(req, 30*time.Second)
			ch <- result{resp, err, time.Since(start)}
		}()
		waitParked(t, n, 1)
		time.Sleep(50 * time.Millisecond)
		if err := pcl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("wake")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.took > 5*time.Second {
			t.Fatalf("v%d: the parked fetch took %v to answer a produce", v, r.took)
		}
		got := fetchedPartitions(n, r.resp.(*kmsg.FetchResponse))
		if p := got["lp/0"]; p.ErrorCode != 0 || len(p.RecordBatches) == 0 || p.HighWatermark != off+1 {
			t.Fatalf("v%d: woken fetch answered %+v", v, p)
		}
		if p := got["lp/1"]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
			t.Fatalf("v%d: untouched partition answered %+v", v, p)
		}
		waitParked(t, n, 0)
	}

	// Nothing produced: the answer comes after about MaxWait, empty.
	fc := dialFetchConn(t, n)
	req := newFetchReq(16, 700, 1)
	addFetchPartition(req, n, "lp", 1, 0, 1<<20)
	start := time.Now()
	resp := fc.fetch(t, req)
	took := time.Since(start)
	if took < 650*time.Millisecond || took > 3*time.Second {
		t.Fatalf("an idle fetch with MaxWait 700ms answered after %v", took)
	}
	if p := fetchedPartitions(n, resp)["lp/1"]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("idle fetch answered %+v", p)
	}
	if n.fetch.count(true) != 0 {
		t.Fatal("a fetch is still parked")
	}
}

// (g) Deleting a topic answers the fetches parked on it; closing the node
// answers every parked fetch.
func TestFetchParkedAnswersOnDeleteAndClose(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "doomed", 1)
	createFetchTopic(t, n, "kept", 1)
	ctx := testCtx(t)

	for _, v := range []int16{12, 13} {
		name := fmt.Sprintf("doomed%d", v)
		createFetchTopic(t, n, name, 1)
		fc := dialFetchConn(t, n)
		req := newFetchReq(v, 20000, 1)
		addFetchPartition(req, n, name, 0, 0, 1<<20)
		ch := make(chan error, 1)
		var resp kmsg.Response
		start := time.Now()
		go func() {
			var err error
			resp, err = fc.roundTrip(req, 30*time.Second)
			ch <- err
		}()
		waitParked(t, n, 1)
		if _, err := newAdmin(t, n).DeleteTopics(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("v%d: parked fetch answered %v after the delete", v, took)
		}
		want := kerr.UnknownTopicOrPartition.Code
		if v >= 13 {
			want = kerr.UnknownTopicID.Code
		}
		r := resp.(*kmsg.FetchResponse)
		if len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != want {
			t.Fatalf("v%d: after delete: %+v", v, r.Topics)
		}
	}

	fc := dialFetchConn(t, n)
	req := newFetchReq(16, 20000, 1)
	addFetchPartition(req, n, "kept", 0, 0, 1<<20)
	ch := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := fc.roundTrip(req, 30*time.Second)
		ch <- err
	}()
	waitParked(t, n, 1)
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	if err := <-ch; err != nil {
		t.Fatalf("parked fetch at close: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("close took %v to answer the parked fetch", took)
	}
}

// (e) Per-partition errors; the good partitions of the same request still
// get their records.
func TestFetchErrors(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "errs", 2)
	fc := dialFetchConn(t, n)
	for i := 0; i < 5; i++ {
		fc.produce(t, "errs", 0, makeTestBatch(t, codecNone, []byte("r")))
	}
	code := func(p kmsg.FetchResponseTopicPartition) error { return kerr.ErrorForCode(p.ErrorCode) }

	for _, v := range []int16{4, 9, 12, 13, 16} {
		req := newFetchReq(v, 0, 0)
		addFetchPartition(req, n, "errs", 0, 0, 1<<20)   // fine
		addFetchPartition(req, n, "errs", 1, 7, 1<<20)   // past the end
		addFetchPartition(req, n, "errs", 9, 0, 1<<20)   // no such partition
		addFetchPartition(req, n, "nosuch", 0, 0, 1<<20) // no such topic
		if v >= 13 {
			req.Topics[len(req.Topics)-1].TopicID = [16]byte{1, 2, 3}
		}
		got := fetchedPartitions(n, fc.fetch(t, req))
		if p := got["errs/0"]; p.ErrorCode != 0 || len(splitBatches(t, p.RecordBatches)) != 5 || p.HighWatermark != 5 ||
			(v >= 5 && p.LogStartOffset != 0) || p.LastStableOffset != 5 || p.AbortedTransactions != nil {
			t.Errorf("v%d errs/0: %v hw %d, %d bytes", v, code(p), p.HighWatermark, len(p.RecordBatches))
		}
		if p := got["errs/1"]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != -1 {
			t.Errorf("v%d errs/1 (offset 7 of 0): %v hw %d", v, code(p), p.HighWatermark)
		}
		if p := got["errs/9"]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d errs/9: %v", v, code(p))
		}
		wantUnknown, key := kerr.UnknownTopicOrPartition.Code, "nosuch/0"
		if v >= 13 {
			wantUnknown, key = kerr.UnknownTopicID.Code, "?/0"
		}
		if p := got[key]; p.ErrorCode != wantUnknown {
			t.Errorf("v%d unknown topic: %v", v, code(p))
		}
	}

	// Offsets below the log start and past the end; read_committed.
	for _, off := range []int64{-1, 6} {
		req := newFetchReq(12, 0, 0)
		addFetchPartition(req, n, "errs", 0, off, 1<<20)
		if p := fetchedPartitions(n, fc.fetch(t, req))["errs/0"]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Errorf("offset %d: %v", off, code(p))
		}
	}
	req := newFetchReq(12, 0, 0)
	req.IsolationLevel = 1
	addFetchPartition(req, n, "errs", 0, 5, 1<<20) // at the end: empty, fine
	if p := fetchedPartitions(n, fc.fetch(t, req))["errs/0"]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 ||
		p.LastStableOffset != 5 || p.AbortedTransactions == nil {
		t.Errorf("read_committed at the end: %v lso %d aborted %v", code(p), p.LastStableOffset, p.AbortedTransactions)
	}

	// Leader epochs (v9+): ours is 0, then 3.
	epochReq := func(epoch int32) kmsg.FetchResponseTopicPartition {
		req := newFetchReq(16, 0, 0)
		addFetchPartition(req, n, "errs", 0, 0, 1<<20)
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch
		resp := fc.fetch(t, req)
		p := fetchedPartitions(n, resp)["errs/0"]
		if p.ErrorCode == kerr.FencedLeaderEpoch.Code && (len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != n.cfg.NodeID) {
			t.Errorf("FENCED_LEADER_EPOCH without node endpoints: %+v", resp.Brokers)
		}
		return p
	}
	if p := epochReq(0); p.ErrorCode != 0 {
		t.Errorf("current epoch: %v", code(p))
	}
	if p := epochReq(1); p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("newer epoch: %v", code(p))
	}
	part := n.reg.partition("errs", 0)
	st := part.state()
	st.LeaderEpoch = 3
	part.st.Store(&st)
	if p := epochReq(2); p.ErrorCode != kerr.FencedLeaderEpoch.Code || p.CurrentLeader.LeaderEpoch != 3 ||
		p.CurrentLeader.LeaderID != n.cfg.NodeID {
		t.Errorf("older epoch: %v leader %+v", code(p), p.CurrentLeader)
	}
	if p := epochReq(3); p.ErrorCode != 0 {
		t.Errorf("current epoch 3: %v", code(p))
	}

	// Diverging epoch (v12+ LastFetchedEpoch): the records were written in
	// epoch 0, so a fetcher claiming epoch 2 up to offset 5 diverges at 5.
	req = newFetchReq(12, 0, 0)
	addFetchPartition(req, n, "errs", 0, 5, 1<<20)
	req.Topics[0].Partitions[0].LastFetchedEpoch = 2
	if p := fetchedPartitions(n, fc.fetch(t, req))["errs/0"]; p.ErrorCode != 0 || p.DivergingEpoch.Epoch != 0 ||
		p.DivergingEpoch.EndOffset != 5 {
		t.Errorf("diverging: %v %+v", code(p), p.DivergingEpoch)
	}

	// A follower fetch: this broker has no followers.
	for _, v := range []int16{12, 15} {
		req = newFetchReq(v, 0, 0)
		req.ReplicaID, req.ReplicaState.ID = 2, 2
		addFetchPartition(req, n, "errs", 0, 0, 1<<20)
		if p := fetchedPartitions(n, fc.fetch(t, req))["errs/0"]; p.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Errorf("v%d follower fetch: %v", v, code(p))
		}
	}
}

// (f) Request and partition byte limits cut at whole batches; the first batch
// of the first partition with data goes out whatever its size (KIP-74).
func TestFetchByteLimits(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "lim", 3)
	fc := dialFetchConn(t, n)
	var size int
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 4; i++ {
			b := makeTestBatch(t, codecNone, bytes.Repeat([]byte{'v'}, 1000))
			size = len(b)
			fc.produce(t, "lim", p, b)
		}
	}
	batches := func(p kmsg.FetchResponseTopicPartition) int {
		if p.ErrorCode != 0 {
			t.Fatalf("partition %d: %v", p.Partition, kerr.ErrorForCode(p.ErrorCode))
		}
		return len(splitBatches(t, p.RecordBatches))
	}
	f := func(maxBytes int32, partMax int32, offsets [3]int64, want [3]int) {
		t.Helper()
		req := newFetchReq(16, 0, 0)
		req.MaxBytes = maxBytes
		for p := int32(0); p < 3; p++ {
			addFetchPartition(req, n, "lim", p, offsets[p], partMax)
		}
		got := fetchedPartitions(n, fc.fetch(t, req))
		for p := 0; p < 3; p++ {
			if b := batches(got[fmt.Sprintf("lim/%d", p)]); b != want[p] {
				t.Errorf("MaxBytes %d PartitionMaxBytes %d: partition %d got %d batches, want %d (all %v)",
					maxBytes, partMax, p, b, want[p], want)
			}
		}
	}
	s := int32(size)
	f(50<<20, 10<<20, [3]int64{}, [3]int{4, 4, 4})
	f(50<<20, 2*s+s/2, [3]int64{}, [3]int{2, 2, 2})  // partition limit, whole batches
	f(5*s+10, 10<<20, [3]int64{}, [3]int{4, 1, 0})   // request limit
	f(50<<20, 10, [3]int64{}, [3]int{1, 0, 0})       // KIP-74: one batch for the first only
	f(1, 10<<20, [3]int64{}, [3]int{1, 0, 0})        // same with the request limit
	f(1, 10<<20, [3]int64{4, 2, 0}, [3]int{0, 1, 0}) // the first with data gets it
	f(0, 0, [3]int64{4, 4, 3}, [3]int{0, 0, 1})      // zero limits still give one batch
	f(3*s, s, [3]int64{1, 1, 1}, [3]int{1, 1, 1})    // exact fits
	f(3*s-1, s, [3]int64{1, 1, 1}, [3]int{1, 1, 0})  // one byte short
}

// (d) Fetch sessions over raw requests: incremental answers carry only what
// changed; forgotten partitions go; epochs are checked.
func TestFetchSessions(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "sa", 3)
	createFetchTopic(t, n, "sb", 1)
	fc := dialFetchConn(t, n)
	pfc := dialFetchConn(t, n)
	for _, v := range []int16{7, 12, 13, 16} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			hw := map[string]int64{}
			for _, m := range []struct {
				topic string
				p     int32
			}{{"sa", 0}, {"sa", 1}, {"sa", 2}, {"sb", 0}} {
				hw[fmt.Sprintf("%s/%d", m.topic, m.p)] = n.reg.partition(m.topic, m.p).hw.Load()
			}
			full := newFetchReq(v, 0, 0)
			full.SessionID, full.SessionEpoch = 0, 0
			for p := int32(0); p < 3; p++ {
				addFetchPartition(full, n, "sa", p, hw[fmt.Sprintf("sa/%d", p)], 1<<20)
			}
			addFetchPartition(full, n, "sb", 0, hw["sb/0"], 1<<20)
			resp := fc.fetch(t, full)
			if resp.ErrorCode != 0 || resp.SessionID == 0 || len(fetchedPartitions(n, resp)) != 4 {
				t.Fatalf("new session: error %d id %d, %d partitions", resp.ErrorCode, resp.SessionID, len(fetchedPartitions(n, resp)))
			}
			id := resp.SessionID
			epoch := int32(1)
			incr := func(maxWait int32, mod func(*kmsg.FetchRequest)) *kmsg.FetchResponse {
				t.Helper()
				req := newFetchReq(v, maxWait, 1)
				req.SessionID, req.SessionEpoch = id, epoch
				if mod != nil {
					mod(req)
				}
				resp := fc.fetch(t, req)
				if resp.ErrorCode == 0 {
					epoch++
				}
				return resp
			}
			keys := func(resp *kmsg.FetchResponse) []string {
				var out []string
				for k := range fetchedPartitions(n, resp) {
					out = append(out, k)
				}
				return out
			}

			if r := incr(0, nil); r.ErrorCode != 0 || r.SessionID != id || len(r.Topics) != 0 {
				t.Fatalf("no change: error %d id %d partitions %v", r.ErrorCode, r.SessionID, keys(r))
			}
			pfc.produce(t, "sa", 1, makeTestBatch(t, codecNone, []byte("one")))
			r := incr(0, nil)
			got := fetchedPartitions(n, r)
			if p, ok := got["sa/1"]; len(got) != 1 || !ok || len(p.RecordBatches) == 0 || p.HighWatermark != hw["sa/1"]+1 {
				t.Fatalf("after a produce to sa/1: %v", keys(r))
			}
			// The client moves sa/1 on: nothing new to say.
			if r := incr(0, func(req *kmsg.FetchRequest) {
				addFetchPartition(req, n, "sa", 1, hw["sa/1"]+1, 1<<20)
			}); r.ErrorCode != 0 || len(r.Topics) != 0 {
				t.Fatalf("after moving sa/1 on: error %d, %v", r.ErrorCode, keys(r))
			}
			// Forget sb/0; a produce there is no longer news.
			if r := incr(0, func(req *kmsg.FetchRequest) {
				ft := kmsg.NewFetchRequestForgottenTopic()
				ft.Topic, ft.TopicID, ft.Partitions = "sb", n.reg.get("sb").id, []int32{0}
				req.ForgottenTopics = append(req.ForgottenTopics, ft)
			}); r.ErrorCode != 0 || len(r.Topics) != 0 {
				t.Fatalf("forgetting: error %d, %v", r.ErrorCode, keys(r))
			}
			pfc.produce(t, "sb", 0, makeTestBatch(t, codecNone, []byte("gone")))
			if r := incr(0, nil); r.ErrorCode != 0 || len(r.Topics) != 0 {
				t.Fatalf("forgotten partition answered: %v", keys(r))
			}
			// A long poll in the session wakes on a produce to a member.
			done := make(chan *kmsg.FetchResponse, 1)
			go func() {
				req := newFetchReq(v, 20000, 1)
				req.SessionID, req.SessionEpoch = id, epoch
				resp, err := fc.roundTrip(req, 30*time.Second)
				if err != nil {
					done <- nil
					return
				}
				done <- resp.(*kmsg.FetchResponse)
			}()
			waitParked(t, n, 1)
			pfc.produce(t, "sa", 2, makeTestBatch(t, codecNone, []byte("two")))
			r = <-done
			if r == nil || r.ErrorCode != 0 {
				t.Fatal("parked incremental fetch failed")
			}
			epoch++
			if got := keys(r); len(got) != 1 || got[0] != "sa/2" {
				t.Fatalf("woken incremental fetch: %v", got)
			}
			// Wrong epochs and ids.
			saved := epoch
			epoch = 99
			if r := incr(0, nil); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
				t.Fatalf("wrong epoch: %v", kerr.ErrorForCode(r.ErrorCode))
			}
			epoch = saved
			if v >= 12 {
				// Switching between names and ids inside a session.
				req := newFetchReq(map[bool]int16{true: 12, false: 13}[v >= 13], 0, 0)
				req.SessionID, req.SessionEpoch = id, epoch
				if r := fc.fetch(t, req); r.ErrorCode != kerr.FetchSessionTopicIDError.Code {
					t.Fatalf("topic id mismatch: %v", kerr.ErrorForCode(r.ErrorCode))
				}
			}
			id++
			if r := incr(0, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("unknown session: %v", kerr.ErrorForCode(r.ErrorCode))
			}
			id--
			if r := incr(0, nil); r.ErrorCode != 0 {
				t.Fatalf("session broken by the bad requests: %v", kerr.ErrorForCode(r.ErrorCode))
			}
			// Epoch -1 closes the session.
			closeReq := newFetchReq(v, 0, 0)
			closeReq.SessionID, closeReq.SessionEpoch = id, -1
			if r := fc.fetch(t, closeReq); r.ErrorCode != 0 || r.SessionID != 0 {
				t.Fatalf("closing: error %d id %d", r.ErrorCode, r.SessionID)
			}
			if r := incr(0, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("closed session: %v", kerr.ErrorForCode(r.ErrorCode))
			}
		})
	}
}

// A fetch parked on a connection that closes stops waiting at once rather
// than holding its watchers and timer until MaxWait.
func TestFetchParkedEndsWhenConnectionCloses(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "idle", 1)
	fc := dialFetchConn(t, n)
	req := newFetchReq(12, 60000, 1)
	addFetchPartition(req, n, "idle", 0, 0, 1<<20)
	go fc.roundTrip(req, 70*time.Second)
	waitParked(t, n, 1)
	fc.c.Close()
	waitParked(t, n, 0)
	if w := n.reg.partition("idle", 0).nwatch.Load(); w != 0 {
		t.Fatalf("%d watchers left on the partition", w)
	}
}

// LastFetchedEpoch (v12+) is checked against the epoch history
// OffsetForLeaderEpoch answers from, as Kafka's Partition.readRecords does:
// the current epoch ends at the log end offset even before a batch was
// written in it, and an epoch newer than the current one is
// OFFSET_OUT_OF_RANGE rather than a diverging answer.
func TestFetchLastFetchedEpoch(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "lfe", 1)
	fc := dialFetchConn(t, n)
	for i := 0; i < 5; i++ {
		fc.produce(t, "lfe", 0, makeTestBatch(t, codecNone, []byte("r"))) // epoch 0, offsets 0-4
	}
	// This broker now leads in epoch 3 but wrote nothing in it yet: the
	// history is (0 from 0), (3 from 5), the log end offset 5.
	part := n.reg.partition("lfe", 0)
	st := part.state()
	st.LeaderEpoch = 3
	part.st.Store(&st)

	fetch := func(offset int64, lastFetched int32) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := newFetchReq(12, 0, 0)
		addFetchPartition(req, n, "lfe", 0, offset, 1<<20)
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = 3
		req.Topics[0].Partitions[0].LastFetchedEpoch = lastFetched
		p, ok := fetchedPartitions(n, fc.fetch(t, req))["lfe/0"]
		if !ok {
			t.Fatalf("offset %d last fetched epoch %d: partition missing", offset, lastFetched)
		}
		return p
	}
	for _, c := range []struct {
		name        string
		offset      int64
		lastFetched int32
		err         int16
		divEpoch    int32 // -1: no DivergingEpoch
		divEnd      int64
		batches     int
	}{
		// Kafka answers (3, 5) for the current epoch: nothing diverges.
		{"current epoch at the end", 5, 3, 0, -1, -1, 0},
		// Newer than the current epoch: the history cannot place it.
		{"epoch above the current one", 5, 4, kerr.OffsetOutOfRange.Code, -1, -1, 0},
		{"epoch above the current one, mid-log", 2, 7, kerr.OffsetOutOfRange.Code, -1, -1, 0},
		// Epoch 0 ends at 5: reading inside it is fine.
		{"epoch 0 inside it", 3, 0, 0, -1, -1, 2},
		{"epoch 0 at its end", 5, 0, 0, -1, -1, 0},
		// Epoch 2 is unknown: the largest below it is 0, which ended at 5.
		{"unknown older epoch", 5, 2, 0, 0, 5, 0},
		// The current epoch ends at the log end, before the fetch offset.
		{"current epoch past the end", 6, 3, 0, 3, 5, 0},
		// Below the log start beats divergence (none here: start is 0).
		{"below the log start", -1, 0, kerr.OffsetOutOfRange.Code, -1, -1, 0},
	} {
		p := fetch(c.offset, c.lastFetched)
		if p.ErrorCode != c.err || p.DivergingEpoch.Epoch != c.divEpoch || p.DivergingEpoch.EndOffset != c.divEnd {
			t.Errorf("%s (offset %d, last fetched epoch %d): error %v diverging %+v; want error %v diverging (%d, %d)",
				c.name, c.offset, c.lastFetched, kerr.ErrorForCode(p.ErrorCode), p.DivergingEpoch,
				kerr.ErrorForCode(c.err), c.divEpoch, c.divEnd)
			continue
		}
		if p.ErrorCode == 0 {
			if got := len(splitBatches(t, p.RecordBatches)); got != c.batches {
				t.Errorf("%s: %d batches, want %d", c.name, got, c.batches)
			}
		}
	}

	// The check agrees with OffsetForLeaderEpoch for the same epochs.
	for _, e := range []int32{0, 2, 3, 4} {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version = 4
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "lfe"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, 3, e
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := fc.roundTrip(req, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		op := resp.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
		f := fetch(5, e)
		switch {
		case op.LeaderEpoch == -1:
			if f.ErrorCode != kerr.OffsetOutOfRange.Code {
				t.Errorf("epoch %d: OffsetForLeaderEpoch cannot place it but fetch says %v", e, kerr.ErrorForCode(f.ErrorCode))
			}
		case op.LeaderEpoch < e || op.EndOffset < 5:
			if f.DivergingEpoch.Epoch != op.LeaderEpoch || f.DivergingEpoch.EndOffset != op.EndOffset {
				t.Errorf("epoch %d: OffsetForLeaderEpoch (%d, %d), fetch diverging %+v", e, op.LeaderEpoch, op.EndOffset, f.DivergingEpoch)
			}
		default:
			if f.ErrorCode != 0 || f.DivergingEpoch.Epoch != -1 {
				t.Errorf("epoch %d: OffsetForLeaderEpoch (%d, %d), fetch %v diverging %+v", e, op.LeaderEpoch, op.EndOffset,
					kerr.ErrorForCode(f.ErrorCode), f.DivergingEpoch)
			}
		}
	}
}

// A parked fetch at epoch 0 whose connection closes opens no fetch session:
// nobody will use it, and it would take a cache slot (perhaps evicting a live
// session).
func TestFetchParkedOnClosedConnOpensNoSession(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "nosess", 1)
	fc := dialFetchConn(t, n)
	req := newFetchReq(12, 60000, 1)
	req.SessionID, req.SessionEpoch = 0, 0
	addFetchPartition(req, n, "nosess", 0, 0, 1<<20)
	go fc.roundTrip(req, 70*time.Second)
	waitParked(t, n, 1)
	fc.c.Close()
	waitParked(t, n, 0)
	// Close waits for resumed fetches (Node.async), so after it the dropped
	// fetch has done all it will do.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c := n.fetch.count(false); c != 0 {
		t.Fatalf("%d fetch sessions opened for a closed connection", c)
	}
	if w := n.reg.partition("nosess", 0).nwatch.Load(); w != 0 {
		t.Fatalf("%d watchers left on the partition", w)
	}
}

// DeleteRecords wakes the fetches parked on the partition: one waiting at an
// offset now below the log start answers OFFSET_OUT_OF_RANGE at once.
func TestFetchParkedWokenByDeleteRecords(t *testing.T) {
	n := startNode(t, "", nil)
	createFetchTopic(t, n, "delrec", 1)
	fc := dialFetchConn(t, n)
	for i := 0; i < 3; i++ {
		fc.produce(t, "delrec", 0, makeTestBatch(t, codecNone, []byte("small")))
	}
	// Some bytes, far fewer than MinBytes: it parks.
	req := newFetchReq(12, 30000, 1<<20)
	addFetchPartition(req, n, "delrec", 0, 0, 1<<20)
	type result struct {
		resp kmsg.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		resp, err := fc.roundTrip(req, 40*time.Second)
		ch <- result{resp, err}
	}()
	waitParked(t, n, 1)

	dreq := kmsg.NewPtrDeleteRecordsRequest()
	dreq.Version, dreq.TimeoutMillis = 2, 10000
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "delrec"
	dp := kmsg.NewDeleteRecordsRequestTopicPartition()
	dp.Partition, dp.Offset = 0, 2
	dt.Partitions = append(dt.Partitions, dp)
	dreq.Topics = append(dreq.Topics, dt)
	start := time.Now()
	dresp, err := dialFetchConn(t, n).roundTrip(dreq, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p := dresp.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LowWatermark != 2 {
		t.Fatalf("delete records: %v low watermark %d", kerr.ErrorForCode(p.ErrorCode), p.LowWatermark)
	}
	var r result
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the parked fetch did not answer within 10s of DeleteRecords moving the log start past it")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the parked fetch answered %v after DeleteRecords", took)
	}
	if p := fetchedPartitions(n, r.resp.(*kmsg.FetchResponse))["delrec/0"]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("parked fetch below the new log start: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	waitParked(t, n, 0)
}
