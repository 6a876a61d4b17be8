package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceNumberedValues produces the values from..to-1 (decimal) in chunks,
// flushing after each so that there are many Produce requests to cut.
func produceNumberedValues(t *testing.T, cl *kgo.Client, from, to, chunk int) {
	t.Helper()
	ctx := testCtx(t)
	var failed atomic.Pointer[error]
	for i := from; i < to; i += chunk {
		for j := i; j < min(i+chunk, to); j++ {
			cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(j))}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
		if err := failed.Load(); err != nil {
			t.Fatalf("produce: %v", *err)
		}
	}
}

// consumeCounts reads every partition of topic from the start to its end
// offsets and counts each value.
func consumeCounts(t *testing.T, n *Node, topic string) (counts map[string]int, records int64) {
	t.Helper()
	ctx := testCtx(t)
	ends, err := newAdmin(t, n).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	cl := newClient(t, n, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	counts = map[string]int{}
	for records < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", records, want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			counts[string(r.Value)]++
			records++
		})
	}
	return counts, records
}

// cutTestClient is a producer for the cut tests: round-robin over the
// partitions so each request carries a batch for each, quick retries.
func cutTestClient(t *testing.T, n *Node, topic string, extra ...kgo.Opt) *kgo.Client {
	opts := append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond })},
		extra...)
	return newClient(t, n, opts...)
}

// TestIdempotentProduceSurvivesCutConnections: with every third Produce
// answer lost after the broker wrote the batches, an idempotent kgo producer
// retries them and each record is in the log exactly once, with no gap.
// The same run without idempotence shows the cuts do cause duplicates.
func TestIdempotentProduceSurvivesCutConnections(t *testing.T) {
	const topic, total, chunk = "idem", 1500, 50
	for _, idempotent := range []bool{true, false} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			p := newCutProxy(t, func(n int32) bool { return n%3 == 2 })
			n := startNode(t, "", func(c *Config) { c.Advertised = p.addr() })
			p.setBackend(n.Addr().String())
			createFetchTopic(t, n, topic, 3)
			var extra []kgo.Opt
			if !idempotent {
				extra = append(extra, kgo.DisableIdempotentWrite())
			}
			produceNumberedValues(t, cutTestClient(t, n, topic, extra...), 0, total, chunk)
			if c := p.cuts.Load(); c < 5 {
				t.Fatalf("only %d answers cut; the test proves nothing", c)
			}
			counts, records := consumeCounts(t, n, topic)
			dups := 0
			for i := 0; i < total; i++ {
				switch c := counts[strconv.Itoa(i)]; {
				case c == 0:
					t.Fatalf("record %d is missing", i)
				case c > 1:
					dups += c - 1
				}
			}
			t.Logf("%d Produce requests, %d answers cut, %d duplicates", p.produces.Load(), p.cuts.Load(), dups)
			if idempotent && (dups > 0 || records != total) {
				t.Fatalf("%d duplicates, %d records for %d produced (%d answers cut)", dups, records, total, p.cuts.Load())
			}
			if !idempotent && dups == 0 {
				t.Fatalf("no duplicates without idempotence although %d answers were cut", p.cuts.Load())
			}
		})
	}
}

// bootNode is startNode for use off the test goroutine: errors are returned.
func bootNode(dir, advertised string) (*Node, error) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Advertised = "127.0.0.1:0", dir, advertised
	cfg.Logger = testLogger()
	cfg.Net.Loops = 2
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		n.Close(context.Background())
		return nil, err
	}
	return n, nil
}

// TestIdempotentProduceAcrossRestart: the broker restarts (clean shutdown,
// new process state on the same data directory) between writing a request
// whose answer was lost and the client's retry; the rebuilt producer state
// still recognises the retry.
func TestIdempotentProduceAcrossRestart(t *testing.T) {
	const topic, total, chunk = "idem-restart", 600, 50
	dir := t.TempDir()
	p := newCutProxy(t, func(n int32) bool { return n == 4 || n == 11 })
	first, err := bootNode(dir, p.addr())
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[Node]
	cur.Store(first)
	t.Cleanup(func() { cur.Load().Close(context.Background()) })
	p.setBackend(first.Addr().String())
	var restarts atomic.Int32
	var restartErr atomic.Pointer[error]
	p.onCut = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cur.Load().Close(ctx); err != nil {
			restartErr.CompareAndSwap(nil, &err)
		}
		n, err := bootNode(dir, p.addr())
		if err != nil {
			restartErr.CompareAndSwap(nil, &err)
			return
		}
		cur.Store(n)
		p.setBackend(n.Addr().String())
		restarts.Add(1)
	}
	createFetchTopic(t, first, topic, 2)
	produceNumberedValues(t, cutTestClient(t, first, topic), 0, total, chunk)
	if err := restartErr.Load(); err != nil {
		t.Fatalf("restart: %v", *err)
	}
	t.Logf("%d Produce requests, %d answers cut", p.produces.Load(), p.cuts.Load())
	if r := restarts.Load(); r != 2 {
		t.Fatalf("%d restarts, want 2", r)
	}
	counts, records := consumeCounts(t, cur.Load(), topic)
	for i := 0; i < total; i++ {
		if c := counts[strconv.Itoa(i)]; c != 1 {
			t.Fatalf("record %d is in the log %d times (%d records for %d produced)", i, c, records, total)
		}
	}
	if records != total {
		t.Fatalf("%d records for %d produced", records, total)
	}
}

// idemBatch is an uncompressed batch of values from producer pid.
func idemBatch(pid int64, epoch int16, seq int32, attrs uint16, values ...string) []byte {
	var vs [][]byte
	for _, v := range values {
		vs = append(vs, []byte(v))
	}
	b := encodeBatch(time.Now().UnixMilli(), vs...)
	be := binary.BigEndian
	be.PutUint16(b[21:], attrs)
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func initProducerID(t *testing.T, rc *rawConn, corr int32, version int16, pid int64, epoch int16, txn *string) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.ProducerID, req.ProducerEpoch, req.TransactionalID = version, pid, epoch, txn
	req.TransactionTimeoutMillis = 60000
	return rc.request(req, corr).(*kmsg.InitProducerIDResponse)
}

// TestIdempotenceRules: raw Produce requests get Kafka's answers — a gap
// OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH, a
// retry NONE with the original's offset — and the refused and repeated
// batches leave the log as it was.
func TestIdempotenceRules(t *testing.T) {
	n := startNode(t, "", nil)
	const topic = "idem-raw"
	createFetchTopic(t, n, topic, 1)
	rc := dialRaw(t, n)
	pid := initProducerID(t, rc, 1, 4, -1, -1, nil).ProducerID
	corr := int32(10)
	f := func(name string, batch []byte, want *kerr.Error, wantBase int64) {
		t.Helper()
		corr++
		resp := rc.request(produceReq(9, -1, topic, map[int32][]byte{0: batch}), corr).(*kmsg.ProduceResponse)
		rp := resp.Topics[0].Partitions[0]
		var code int16
		if want != nil {
			code = want.Code
		}
		if rp.ErrorCode != code {
			t.Fatalf("%s: %v, want %v", name, kerr.ErrorForCode(rp.ErrorCode), want)
		}
		if want == nil && rp.BaseOffset != wantBase {
			t.Fatalf("%s: base offset %d, want %d", name, rp.BaseOffset, wantBase)
		}
		if want != nil && (rp.ErrorMessage == nil || *rp.ErrorMessage == "") {
			t.Fatalf("%s: %v without a message saying why", name, want)
		}
	}
	f("first", idemBatch(pid, 0, 0, 0, "a", "b", "c"), nil, 0)
	f("next", idemBatch(pid, 0, 3, 0, "d"), nil, 3)
	f("gap", idemBatch(pid, 0, 5, 0, "gap"), kerr.OutOfOrderSequenceNumber, 0)
	f("retry of the first", idemBatch(pid, 0, 0, 0, "a", "b", "c"), nil, 0)
	f("retry of the last", idemBatch(pid, 0, 3, 0, "d"), nil, 3)
	f("new epoch not from 0", idemBatch(pid, 1, 4, 0, "x"), kerr.OutOfOrderSequenceNumber, 0)
	f("new epoch", idemBatch(pid, 1, 0, 0, "e", "f"), nil, 4)
	f("older epoch", idemBatch(pid, 0, 4, 0, "stale"), kerr.InvalidProducerEpoch, 0)
	f("retry from the older epoch", idemBatch(pid, 0, 3, 0, "d"), kerr.InvalidProducerEpoch, 0)
	f("transactional", idemBatch(pid, 1, 2, 0x10, "txn"), kerr.TransactionalIDAuthorizationFailed, 0)
	f("another producer", idemBatch(pid+1, 0, 0, 0, "g"), nil, 6)

	counts, records := consumeCounts(t, n, topic)
	if records != 7 {
		t.Fatalf("%d records in the log, want 7: %v", records, counts)
	}
	for _, v := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		if counts[v] != 1 {
			t.Fatalf("value %q is in the log %d times: %v", v, counts[v], counts)
		}
	}
}

// TestInitProducerID: ids are unique, also across a restart (the unused
// rest of a block is skipped, never handed out again); a KIP-360 request
// bumps the epoch of an id the broker handed out; transactional ids are
// refused.
func TestInitProducerID(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	rc := dialRaw(t, n)
	seen := map[int64]bool{}
	corr := int32(0)
	fresh := func(version int16, pid int64, epoch int16) int64 {
		t.Helper()
		corr++
		r := initProducerID(t, rc, corr, version, pid, epoch, nil)
		if r.ErrorCode != 0 || r.ProducerEpoch != 0 || r.ProducerID < 0 || seen[r.ProducerID] {
			t.Fatalf("v%d InitProducerId(%d, %d): %+v (ids so far %v)", version, pid, epoch, r, seen)
		}
		seen[r.ProducerID] = true
		return r.ProducerID
	}
	for v := int16(0); v <= 5; v++ {
		fresh(v, -1, -1)
	}
	id := fresh(4, -1, -1)
	corr++
	if r := initProducerID(t, rc, corr, 4, id, 0, nil); r.ErrorCode != 0 || r.ProducerID != id || r.ProducerEpoch != 1 {
		t.Fatalf("epoch bump of %d: %+v, want the same id with epoch 1", id, r)
	}
	fresh(4, id, 32766) // the epoch is exhausted: a new id
	fresh(4, 999, 3)    // not handed out (yet): a new id, never the named one
	fresh(4, 1<<40, 0)  // never handed out
	fresh(2, id, 5)     // v2 has no id and epoch fields
	corr++
	if r := initProducerID(t, rc, corr, 4, -1, -1, ptr("tx")); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional id: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", kerr.ErrorForCode(r.ErrorCode))
	}
	before := len(seen)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, dir, nil)
	rc = dialRaw(t, n)
	if got := fresh(4, -1, -1); got != producerIDBlock {
		t.Fatalf("first id after restart %d, want %d (the next block)", got, producerIDBlock)
	}
	for i := 0; i < 3; i++ {
		fresh(4, -1, -1)
	}
	if len(seen) != before+4 {
		t.Fatalf("%d ids, want %d", len(seen), before+4)
	}
}

// TestProducerIDBlocks: ids cross block boundaries without a gap within one
// life, each block is durable before it is used, and a damaged block file
// stops the broker instead of risking a reused id.
func TestProducerIDBlocks(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	p := n.pids
	for i := int64(0); i < producerIDBlock+5; i++ {
		id, err := p.takeOrReserve()
		if err != nil || id != i {
			t.Fatalf("id %d: %d %v", i, id, err)
		}
	}
	if _, ok := p.take(); !ok {
		t.Fatal("take found no id in a reserved block")
	}
	reopened, err := openProducerIDs(n.fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := reopened.takeOrReserve(); err != nil || id != 2*producerIDBlock {
		t.Fatalf("after a crash the next id is %d (%v), want %d", id, err, 2*producerIDBlock)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Close(ctx)
	f, err := n.fs.Create(dir + "/" + producerIDFile)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("12x4\n"), 0)
	f.Close()
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Logger = "127.0.0.1:0", dir, testLogger()
	if n, err := New(cfg); err == nil {
		n.Close(ctx)
		t.Fatal("a broker started with a damaged producer-id-block")
	} else if !strings.Contains(err.Error(), producerIDFile) {
		t.Fatalf("error %q does not name the file", err)
	}
}
