package perf

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Raw request shaping: one batch per partition per request, like a producer
// draining every ready partition, split so no request exceeds maxRawRequest
// (well under Kafka's 100 MiB socket.request.max.bytes), and refusing
// templates that would pin more than maxRawTemplates of memory.
const (
	maxRawRequest   = 8 << 20
	maxRawTemplates = 256 << 20
	rawTimeoutMs    = 30000
)

// rawRunner replays pre-encoded Produce requests over Connections TCP
// connections per partition leader, up to InFlight requests pipelined on
// each. Encoding happens once in prepare, so the client spends its CPU on
// syscalls and the broker is what saturates.
type rawRunner struct {
	conns    []*rawConn
	requests atomic.Int64
}

func (r *rawRunner) prepare(ctx context.Context, e *env) error {
	md, err := e.adm.Metadata(ctx, e.w.Topic)
	if err != nil {
		return err
	}
	td := md.Topics[e.w.Topic]
	addrs := map[int32]string{}
	for _, b := range md.Brokers {
		addrs[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	byLeader := map[int32][]int32{}
	for _, p := range td.Partitions {
		byLeader[p.Leader] = append(byLeader[p.Leader], p.Partition)
	}
	leaders := make([]int32, 0, len(byLeader))
	for l := range byLeader {
		leaders = append(leaders, l)
	}
	slices.Sort(leaders)

	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("sluice-bench-raw"))
	connsOf := map[int32][]*rawConn{}
	version := int16(1 << 14)
	for _, l := range leaders {
		addr, ok := addrs[l]
		if !ok {
			return fmt.Errorf("leader %d of %s is not in the broker list", l, e.w.Topic)
		}
		for range e.w.Connections {
			c, err := dialRaw(len(r.conns), addr)
			if err != nil {
				return err
			}
			r.conns = append(r.conns, c)
			connsOf[l] = append(connsOf[l], c)
		}
		v, err := connsOf[l][0].produceVersion(f)
		if err != nil {
			return fmt.Errorf("broker %d (%s): %w", l, addr, err)
		}
		version = min(version, v)
	}
	if version >= 13 && td.ID == [16]byte{} {
		version = 12 // v13 addresses topics by id; without one, stay on names
	}

	rng := rand.New(rand.NewPCG(1, 2))
	next := func() int { return e.sizes.sample(rng) }
	batch, perBatch, batchPayload := buildBatch(int(e.w.BatchBytes), next, e.w.Keys, e.payload, rng, time.Now())
	e.raw = &RawStats{ProduceVersion: version, Connections: len(r.conns), InFlight: e.w.InFlight,
		RecordsPerBatch: perBatch}

	group := max(1, maxRawRequest/len(batch))
	if total := len(td.Partitions) * len(batch); total > maxRawTemplates {
		return fmt.Errorf("raw: %d partitions x %d-byte batches needs %d MiB of templates; lower --batch-bytes",
			len(td.Partitions), len(batch), total>>20)
	}
	for _, l := range leaders {
		parts := byLeader[l]
		slices.Sort(parts)
		var reqs []*rawRequest
		for lo := 0; lo < len(parts); lo += group {
			chunk := parts[lo:min(lo+group, len(parts))]
			req := kmsg.NewPtrProduceRequest()
			req.Version, req.Acks, req.TimeoutMillis = version, e.acks, rawTimeoutMs
			t := kmsg.NewProduceRequestTopic()
			t.Topic, t.TopicID = e.w.Topic, td.ID
			for _, p := range chunk {
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition, rp.Records = p, batch
				t.Partitions = append(t.Partitions, rp)
			}
			req.Topics = append(req.Topics, t)
			hdr, body, err := encodeRawRequest(f, req)
			if err != nil {
				return err
			}
			n := int64(len(chunk))
			reqs = append(reqs, &rawRequest{header: hdr, body: body, perPart: int64(perBatch),
				partB: int64(batchPayload), records: n * int64(perBatch), bytes: n * int64(batchPayload)})
			e.raw.RequestBytes = max(e.raw.RequestBytes, len(hdr)+len(body))
			e.raw.BatchesPerRequest = max(e.raw.BatchesPerRequest, len(chunk))
		}
		for _, c := range connsOf[l] {
			c.reqs = reqs
			for _, rq := range reqs {
				c.headers = append(c.headers, slices.Clone(rq.header))
			}
		}
	}
	return nil
}

type rawPending struct {
	corr int32
	t    time.Time
	req  *rawRequest
}

func (r *rawRunner) run(ctx context.Context, e *env) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	failConn := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
		for _, c := range r.conns {
			_ = c.conn.Close() // unblocks every reader and writer
		}
	}
	// An aborted run must not leave readers waiting for responses a
	// stalled broker will never send.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range r.conns {
			_ = c.conn.Close()
		}
	})
	defer stop()
	for _, c := range r.conns {
		slots := make(chan struct{}, e.w.InFlight)
		pending := make(chan rawPending, e.w.InFlight)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(pending)
			r.write(runCtx, e, c, slots, pending, failConn)
		}()
		go func() {
			defer wg.Done()
			r.read(e, c, slots, pending, failConn)
		}()
	}
	wg.Wait()
	e.raw.Requests = r.requests.Load()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// write claims a pipeline slot, then a schedule slot, then sends. Taking
// the pipeline slot first keeps closed-loop latency from including time
// spent waiting for a slot; under a rate the intended time is used anyway.
func (r *rawRunner) write(ctx context.Context, e *env, c *rawConn, slots chan struct{}, pending chan<- rawPending, fail func(error)) {
	for i := c.id; ; i++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		k := i % len(c.reqs)
		due, ok := e.sched.wait(ctx, c.reqs[k].records)
		if !ok {
			return
		}
		c.corr++
		hdr := c.headers[k]
		binary.BigEndian.PutUint32(hdr[correlationAt:], uint32(c.corr))
		pending <- rawPending{corr: c.corr, t: due, req: c.reqs[k]}
		e.rec.sent.Add(c.reqs[k].records)
		bufs := net.Buffers{hdr, c.reqs[k].body}
		if _, err := bufs.WriteTo(c.conn); err != nil {
			fail(fmt.Errorf("raw conn %d write: %w", c.id, err))
			return
		}
	}
}

func (r *rawRunner) read(e *env, c *rawConn, slots <-chan struct{}, pending <-chan rawPending, fail func(error)) {
	var buf []byte
	for p := range pending {
		var stop, err error
		if buf, err = c.readFrame(buf); err == nil {
			stop, err = r.account(e, c, p, buf)
		}
		if err != nil {
			e.rec.fail(p.req.records, err)
			fail(fmt.Errorf("raw conn %d read: %w", c.id, err))
			return
		}
		if stop != nil {
			fail(fmt.Errorf("raw: broker refuses the pre-encoded batches: %w", stop))
			return
		}
		<-slots
	}
}

// account parses one Produce response and counts its partitions' records as
// acknowledged or failed by their error codes. A malformed response is
// returned as err (nothing counted); a non-retriable partition error, which
// replaying the same bytes can never cure (MESSAGE_TOO_LARGE, say), is
// counted and returned as stop so the run ends instead of hammering.
func (r *rawRunner) account(e *env, c *rawConn, p rawPending, frame []byte) (stop, err error) {
	version := e.raw.ProduceVersion
	body, err := responseBody(frame, p.corr, version >= 9)
	if err != nil {
		return nil, err
	}
	resp := kmsg.ProduceResponse{Version: version}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode produce response: %w", err)
	}
	e.rec.lat.record(c.id, time.Since(p.t))
	r.requests.Add(1)
	seen := int64(0)
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			seen++
			if rp.ErrorCode != 0 {
				kind := kerr.ErrorForCode(rp.ErrorCode)
				perr := fmt.Errorf("partition %d: %w", rp.Partition, kind)
				e.rec.fail(p.req.perPart, perr)
				if !kerr.IsRetriable(kind) && stop == nil {
					stop = perr
				}
				continue
			}
			e.rec.records.Add(p.req.perPart)
			e.rec.bytes.Add(p.req.partB)
		}
	}
	if want := p.req.records / p.req.perPart; seen != want {
		e.rec.fail((want-seen)*p.req.perPart, fmt.Errorf("produce response lists %d partitions, sent %d", seen, want))
	}
	return stop, nil
}

func (r *rawRunner) close() {
	for _, c := range r.conns {
		_ = c.conn.Close()
	}
}
