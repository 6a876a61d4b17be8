package node

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/sluicemq/sluice/repl"
	"github.com/sluicemq/sluice/segstore"
)

// fakeLeader is a leader broker for replica fetcher tests: a TCP server
// answering Fetch v12 from real segstore logs, as a Kafka leader would
// (DivergingEpoch from LastFetchedEpoch, records from the fetch offset up to
// the LEO, a long poll while nothing is there), with scripted errors and a
// hook that can hold or cut a request.
type fakeLeader struct {
	t    *testing.T
	ln   net.Listener
	addr string

	mu    sync.Mutex
	logs  map[topicPart]*segstore.Log
	hw    map[topicPart]int64   // absent: the LEO
	errs  map[topicPart][]int16 // consumed one per fetch of the partition
	seen  []seenFetch
	conns []net.Conn
	// onFetch runs before the n-th fetch (1-based) is answered, without mu;
	// it may block. Returning true closes the connection instead.
	onFetch func(n int, req *kmsg.FetchRequest) (cut bool)
	wg      sync.WaitGroup
}

// seenFetch is one fetch request as the fake leader received it.
type seenFetch struct {
	at    time.Time
	conn  int
	parts map[topicPart]kmsg.FetchRequestTopicPartition
	req   *kmsg.FetchRequest
}

func newFakeLeader(t *testing.T) *fakeLeader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &fakeLeader{t: t, ln: ln, addr: ln.Addr().String(), logs: map[topicPart]*segstore.Log{},
		hw: map[topicPart]int64{}, errs: map[topicPart][]int16{}}
	fl.wg.Add(1)
	go fl.accept()
	t.Cleanup(fl.stop)
	return fl
}

func (fl *fakeLeader) stop() {
	fl.ln.Close()
	fl.mu.Lock()
	for _, c := range fl.conns {
		c.Close()
	}
	fl.mu.Unlock()
	fl.wg.Wait()
}

func (fl *fakeLeader) accept() {
	defer fl.wg.Done()
	for {
		c, err := fl.ln.Accept()
		if err != nil {
			return
		}
		fl.mu.Lock()
		id := len(fl.conns)
		fl.conns = append(fl.conns, c)
		fl.mu.Unlock()
		fl.wg.Add(1)
		go fl.serve(c, id)
	}
}

func (fl *fakeLeader) serve(c net.Conn, id int) {
	defer fl.wg.Done()
	defer c.Close()
	for {
		q, err := readKafkaRequest(c)
		if err != nil {
			return
		}
		if q.key != 1 || q.version != replicaFetchVersion {
			fl.t.Errorf("fake leader: request key %d v%d, want Fetch v%d", q.key, q.version, replicaFetchVersion)
			return
		}
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(q.version)
		if err := req.ReadFrom(q.body); err != nil {
			fl.t.Errorf("fake leader: decode fetch: %v", err)
			return
		}
		fl.mu.Lock()
		s := seenFetch{at: time.Now(), conn: id, req: req, parts: map[topicPart]kmsg.FetchRequestTopicPartition{}}
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				s.parts[topicPart{rt.Topic, rp.Partition}] = rp
			}
		}
		fl.seen = append(fl.seen, s)
		n, hook := len(fl.seen), fl.onFetch
		fl.mu.Unlock()
		if hook != nil && hook(n, req) {
			return
		}
		resp := fl.answer(req)
		if err := writeKafkaResponse(c, q.corr, []byte{0}, resp.AppendTo(nil)); err != nil {
			return
		}
	}
}

// answer long-polls up to MaxWaitMillis until some partition has something
// to say, as a leader parks a fetch with MinBytes 1.
func (fl *fakeLeader) answer(req *kmsg.FetchRequest) *kmsg.FetchResponse {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		resp, ready := fl.read(req)
		if ready || !time.Now().Before(deadline) {
			return resp
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (fl *fakeLeader) read(req *kmsg.FetchRequest) (*kmsg.FetchResponse, bool) {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = req.Version
	ready := false
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, rt := range req.Topics {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := fl.readPartition(topicPart{rt.Topic, rp.Partition}, rp)
			ready = ready || p.ErrorCode != 0 || p.DivergingEpoch.Epoch >= 0 || len(p.RecordBatches) > 0
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, ready
}

// readPartition answers one partition; called with mu held. Scripted errors
// are consumed only when the answer is sent (ready), which a scripted error
// always is.
func (fl *fakeLeader) readPartition(k topicPart, rp kmsg.FetchRequestTopicPartition) kmsg.FetchResponseTopicPartition {
	p := kmsg.NewFetchResponseTopicPartition()
	p.Partition = rp.Partition
	if q := fl.errs[k]; len(q) > 0 {
		p.ErrorCode, fl.errs[k] = q[0], q[1:]
		return p
	}
	l := fl.logs[k]
	if l == nil {
		p.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return p
	}
	offs := l.Offsets()
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = offs.End, offs.End, offs.Start
	if hw, ok := fl.hw[k]; ok {
		p.HighWatermark, p.LastStableOffset = hw, hw
	}
	// Kafka's Partition.readRecords: the follower's last fetched epoch must
	// end at or after its fetch offset on the leader, else it diverged.
	if rp.LastFetchedEpoch >= 0 {
		ep, end := l.EndOffsetForEpoch(rp.LastFetchedEpoch)
		if ep != rp.LastFetchedEpoch || end < rp.FetchOffset {
			p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset = ep, end
			return p
		}
	}
	recs, err := l.ReadCopy(rp.FetchOffset, int64(rp.PartitionMaxBytes), -1, nil)
	if errors.Is(err, segstore.ErrOffsetOutOfRange) {
		p.ErrorCode = kerr.OffsetOutOfRange.Code
		return p
	} else if err != nil {
		if !errors.Is(err, segstore.ErrClosed) { // the test's cleanup closed the store first
			fl.t.Errorf("fake leader: read %v at %d: %v", k, rp.FetchOffset, err)
		}
		p.ErrorCode = kerr.KafkaStorageError.Code
		return p
	}
	p.RecordBatches = recs
	return p
}

func (fl *fakeLeader) addLog(topic string, part int32, l *segstore.Log) {
	fl.mu.Lock()
	fl.logs[topicPart{topic, part}] = l
	fl.mu.Unlock()
}

func (fl *fakeLeader) setHW(topic string, part int32, hw int64) {
	fl.mu.Lock()
	fl.hw[topicPart{topic, part}] = hw
	fl.mu.Unlock()
}

func (fl *fakeLeader) script(topic string, part int32, codes ...int16) {
	fl.mu.Lock()
	fl.errs[topicPart{topic, part}] = append(fl.errs[topicPart{topic, part}], codes...)
	fl.mu.Unlock()
}

func (fl *fakeLeader) hook(fn func(n int, req *kmsg.FetchRequest) bool) {
	fl.mu.Lock()
	fl.onFetch = fn
	fl.mu.Unlock()
}

// fetches returns the fetches received so far.
func (fl *fakeLeader) fetches() []seenFetch {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return append([]seenFetch(nil), fl.seen...)
}

func (fl *fakeLeader) connCount() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return len(fl.conns)
}

// testStore is a store on a temp dir with the sync io engine.
func testStore(t *testing.T) *segstore.Store {
	t.Helper()
	st, err := segstore.Open(segstore.Config{Dir: t.TempDir(), FS: vfs.OS, Engine: ioring.NewSync(2), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testLog(t *testing.T, st *segstore.Store, topic string, part int32) *segstore.Log {
	t.Helper()
	l, err := st.CreateLog(topic, part, segstore.LogConfig{SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendN appends n one-record batches in epoch, as a leader does.
func appendN(t *testing.T, l *segstore.Log, epoch int32, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		done := make(chan error, 1)
		v := []byte{byte(epoch), byte(i), 'v', 'a', 'l', 'u', 'e'}
		if _, err := l.Append(encodeBatch(time.Now().UnixMilli(), v), epoch, func(r segstore.AppendResult) { done <- r.Err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// logBytes is the whole log as a fetch would read it.
func logBytes(t *testing.T, l *segstore.Log) []byte {
	t.Helper()
	o := l.Offsets()
	b, err := l.ReadCopy(o.Start, 1<<30, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testFollower is the follower broker's side: its store, fetchers and metrics.
type testFollower struct {
	t   *testing.T
	st  *segstore.Store
	r   *replicaFetchers
	set *metrics.Set
}

// newTestFollower is broker 2 with a 50 ms fetch wait and backoff; mod
// changes its fetcher config.
func newTestFollower(t *testing.T, mod func(*fetcherConfig)) *testFollower {
	t.Helper()
	tf := &testFollower{t: t, st: testStore(t), set: metrics.NewSet()}
	cfg := fetcherConfig{nodeID: 2, wait: 50 * time.Millisecond, backoff: 50 * time.Millisecond,
		log: testLogger(), metrics: tf.set}
	if mod != nil {
		mod(&cfg)
	}
	tf.r = newReplicaFetchersWith(cfg)
	t.Cleanup(tf.r.close)
	return tf
}

// partition creates the follower's log for topic-part and its partition.
func (tf *testFollower) partition(name string, part int32) *partition {
	return newPartition(&topic{name: name}, part, testLog(tf.t, tf.st, name, part), partState{})
}

// follow starts following p from leader 1 in epoch, over p's log.
func (tf *testFollower) follow(p *partition, fl *fakeLeader, epoch int32) *repl.Follower {
	f := repl.NewFollower(repl.FollowerConfig{BrokerID: 2}, p.getLog(), 1, epoch, p.hw.Load())
	tf.r.follow(p, f, 1, fl.addr)
	return f
}

func (tf *testFollower) counter(name string) uint64 {
	return tf.set.GetOrCreateCounter(name).Get()
}
