package node

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/sluicemq/sluice/netpoll"
	"github.com/sluicemq/sluice/segstore"
)

// frameTestFile is an in-memory segment file (no descriptor: the copy path).
type frameTestFile struct{ data []byte }

func (f *frameTestFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (f *frameTestFile) WriteAt(p []byte, off int64) (int, error) { panic("read only") }
func (f *frameTestFile) Close() error                             { return nil }
func (f *frameTestFile) Sync() error                              { return nil }
func (f *frameTestFile) Truncate(int64) error                     { return nil }
func (f *frameTestFile) Size() (int64, error)                     { return int64(len(f.data)), nil }
func (f *frameTestFile) Fd() uintptr                              { return vfs.InvalidFd }
func (f *frameTestFile) Name() string                             { return "frame-test" }

// materialize joins f's wire bytes, reading the file ranges, and checks that
// f.parts describe the same segments.
func (f *fetchFrame) materialize(t testing.TB) []byte {
	t.Helper()
	var out []byte
	prev, pi := 0, 0
	for i, cut := range f.cuts {
		if cut > prev {
			if f.parts[pi].IsFile() || f.parts[pi].Len() != int64(cut-prev) {
				t.Fatalf("part %d: want %d bytes", pi, cut-prev)
			}
			pi++
		}
		out = append(out, f.buf[prev:cut]...)
		s := &f.slices[i]
		if !f.parts[pi].IsFile() || f.parts[pi].Len() != s.Len {
			t.Fatalf("part %d: want a %d-byte file range", pi, s.Len)
		}
		pi++
		b := make([]byte, s.Len)
		if _, err := s.CopyTo(b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
		prev = cut
	}
	if len(f.buf) > prev || pi == 0 {
		pi++
	}
	out = append(out, f.buf[prev:]...)
	if pi != len(f.parts) {
		t.Fatalf("%d parts, want %d", len(f.parts), pi)
	}
	if int64(len(out)) != f.size {
		t.Fatalf("size %d, materialized %d", f.size, len(out))
	}
	return out
}

// randomFetchResponse makes a random response for version v as fetchItems
// (records in file) and as the kmsg struct kmsg would encode the same way.
func randomFetchResponse(rng *rand.Rand, v int16, file *frameTestFile) (frameHead, []fetchItem, []frameBroker, *kmsg.FetchResponse) {
	flex := v >= 12
	h := frameHead{version: v, throttle: rng.Int32N(1000)}
	want := kmsg.NewPtrFetchResponse()
	want.Version = v
	want.ThrottleMillis = h.throttle
	if v >= 7 {
		h.err, h.sessionID = int16(rng.IntN(3)), rng.Int32()
		want.ErrorCode, want.SessionID = h.err, h.sessionID
	}
	var items []fetchItem
	ntopics := rng.IntN(5)
	for ti := 0; ti < ntopics; ti++ {
		name := fmt.Sprintf("topic-%d", rng.IntN(3)) // may repeat a topic, also adjacently
		var id [16]byte
		id[0], id[15] = byte(name[len(name)-1]), 7
		np := rng.IntN(5)
		for pi := 0; pi < np; pi++ {
			it := fetchItem{topic: name, topicID: id, partition: rng.Int32N(100)}
			r := &it.fetchResult
			r.err = int16(rng.IntN(2) * rng.IntN(120))
			r.hw, r.lso, r.logStart = rng.Int64N(1<<40)-1, rng.Int64N(1<<40)-1, rng.Int64N(1<<40)-1
			r.abortedEmpty = rng.IntN(2) == 0
			if rng.IntN(2) == 0 {
				n := 1 + rng.IntN(300)
				pos := int64(len(file.data))
				for k := 0; k < n; k++ {
					file.data = append(file.data, byte(rng.IntN(256)))
				}
				r.records = segstore.Slice{File: file, Pos: pos, Len: int64(n)}
			}
			if flex && rng.IntN(3) == 0 {
				r.diverging, r.divEpoch, r.divEnd = true, rng.Int32N(100), rng.Int64N(1<<30)
			}
			if flex && rng.IntN(3) == 0 {
				r.hasLeader, r.leaderID, r.leaderEpoch = true, rng.Int32N(10), rng.Int32N(100)
			}
			r.omit = rng.IntN(5) == 0
			items = append(items, it)
		}
	}
	// The expected struct: included items, adjacent ones of a topic grouped.
	for i := range items {
		it := &items[i]
		if it.omit {
			continue
		}
		nt := len(want.Topics)
		if nt == 0 || !sameFetchTopic(v, &items[lastIncluded(items, i)], it) {
			t := kmsg.NewFetchResponseTopic()
			if v >= 13 {
				t.TopicID = it.topicID
			} else {
				t.Topic = it.topic
			}
			want.Topics = append(want.Topics, t)
			nt++
		}
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition, p.ErrorCode = it.partition, it.err
		p.HighWatermark, p.LastStableOffset, p.LogStartOffset = it.hw, it.lso, it.logStart
		if it.abortedEmpty {
			p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		p.PreferredReadReplica = -1
		p.RecordBatches = []byte{} // empty, not null, as Kafka sends it
		if it.records.Len > 0 {
			p.RecordBatches = file.data[it.records.Pos : it.records.Pos+it.records.Len]
		}
		if it.diverging {
			p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset = it.divEpoch, it.divEnd
		}
		if it.hasLeader {
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = it.leaderID, it.leaderEpoch
		}
		want.Topics[nt-1].Partitions = append(want.Topics[nt-1].Partitions, p)
	}
	var brokers []frameBroker
	if v >= 16 && rng.IntN(2) == 0 {
		for k := rng.IntN(3); k >= 0; k-- {
			br := frameBroker{id: rng.Int32N(5), host: fmt.Sprintf("host-%d.example", k), port: 9092 + rng.Int32N(10)}
			if rng.IntN(2) == 0 {
				br.rack = ptr(fmt.Sprintf("rack-%d", k))
			}
			brokers = append(brokers, br)
			want.Brokers = append(want.Brokers, kmsg.FetchResponseBroker{NodeID: br.id, Host: br.host, Port: br.port, Rack: br.rack})
		}
	}
	return h, items, brokers, want
}

// lastIncluded is the index of the last non-omitted item before i (or i).
func lastIncluded(items []fetchItem, i int) int {
	for j := i - 1; j >= 0; j-- {
		if !items[j].omit {
			return j
		}
	}
	return i
}

func TestFetchFrameMatchesKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 3000; round++ {
		v := int16(4 + round%13)
		file := &frameTestFile{}
		h, items, brokers, want := randomFetchResponse(rng, v, file)
		f := getFetchFrame()
		f.build(h, items, brokers)
		got := f.materialize(t)
		exp := want.AppendTo(nil)
		if !bytes.Equal(got, exp) {
			t.Fatalf("round %d v%d: framed response differs from kmsg\n got %x\nwant %x", round, v, got, exp)
		}
		// And it decodes back to the same content.
		back := kmsg.NewPtrFetchResponse()
		back.Version = v
		if err := back.ReadFrom(got); err != nil {
			t.Fatalf("round %d v%d: kmsg cannot read it: %v", round, v, err)
		}
		for i := range items {
			if items[i].records.Len != 0 {
				t.Fatal("build left a record slice with an item")
			}
		}
		f.done()
	}
}

// closeCountFS is a MemFS that counts how often each .log file is closed: a
// segment's file closes when its last reference (the log's own, or a
// Slice's) is released, so the count shows a Slice released too often (the
// file closes while the log still holds it) or never (it does not close
// once the log lets go).
type closeCountFS struct {
	*vfs.MemFS
	mu     sync.Mutex
	closes map[string]int
}

type closeCountFile struct {
	vfs.File
	fs *closeCountFS
}

func (f closeCountFile) Close() error {
	if strings.HasSuffix(f.Name(), ".log") {
		f.fs.mu.Lock()
		f.fs.closes[f.Name()]++
		f.fs.mu.Unlock()
	}
	return f.File.Close()
}

func (fs *closeCountFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return closeCountFile{f, fs}, nil
}

func (fs *closeCountFS) Create(name string) (vfs.File, error) { return fs.wrap(fs.MemFS.Create(name)) }
func (fs *closeCountFS) OpenRW(name string) (vfs.File, error) { return fs.wrap(fs.MemFS.OpenRW(name)) }
func (fs *closeCountFS) Open(name string) (vfs.File, error)   { return fs.wrap(fs.MemFS.Open(name)) }

func (fs *closeCountFS) counts() map[string]int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return maps.Clone(fs.closes)
}

// runPartReleases does what netpoll does once a response is written or
// dropped: run each part's release callback once. It reports how many parts
// had one. (netpoll.Part keeps the callback unexported; reflection reads it.)
func runPartReleases(t testing.TB, parts []netpoll.Part) int {
	t.Helper()
	n := 0
	for i := range parts {
		v := reflect.ValueOf(&parts[i]).Elem().FieldByName("release")
		if !v.IsValid() || v.Kind() != reflect.Func {
			t.Fatal("netpoll.Part has no release func field any more: update runPartReleases")
		}
		if v.IsNil() {
			continue
		}
		fn := reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem().Interface().(func())
		fn()
		n++
	}
	return n
}

// The framer releases every record slice exactly once: an omitted item's
// while building, the others when netpoll runs the response's release
// callback, which sits on exactly one part. The slices are real segstore
// reads, each pinning its segment.
func TestFetchFrameReleasesOnce(t *testing.T) {
	// An empty response is one byte part, still carrying the release.
	f := getFetchFrame()
	f.build(frameHead{version: 12}, nil, nil)
	if len(f.parts) != 1 || f.parts[0].IsFile() {
		t.Fatalf("empty response: %d parts", len(f.parts))
	}
	got := f.materialize(t)
	want := kmsg.NewPtrFetchResponse()
	want.Version = 12
	if !bytes.Equal(got, want.AppendTo(nil)) {
		t.Fatalf("empty response %x", got)
	}
	if n := runPartReleases(t, append([]netpoll.Part(nil), f.parts...)); n != 1 {
		t.Fatalf("empty response: %d release callbacks, want 1", n)
	}

	fs := &closeCountFS{MemFS: vfs.NewMem(), closes: map[string]int{}}
	st, err := segstore.Open(segstore.Config{Dir: "/data", FS: fs, Engine: ioring.NewFake(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	batch := makeTestBatch(t, codecNone, bytes.Repeat([]byte{'x'}, 200))
	// Two batches per segment: segments at 0, 2, 4, 6 (active).
	l, err := st.CreateLog("rel", 0, segstore.LogConfig{SegmentBytes: int64(2*len(batch) + len(batch)/2)})
	if err != nil {
		t.Fatal(err)
	}
	const nbatches = 8
	done := make(chan error, nbatches)
	for i := 0; i < nbatches; i++ {
		if _, err := l.Append(append([]byte(nil), batch...), 0, func(r segstore.AppendResult) { done <- r.Err }); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < nbatches; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 200; round++ {
		v := int16(4 + round%13)
		var items []fetchItem
		var omitted, kept int
		for i := 0; i < 1+rng.IntN(12); i++ {
			it := fetchItem{topic: fmt.Sprintf("t%d", rng.IntN(2)), partition: int32(i)}
			it.topicID[0] = it.topic[1]
			if rng.IntN(4) != 0 {
				off := rng.Int64N(nbatches)
				sl, err := l.Read(off, int64(rng.IntN(3)+1)*int64(len(batch)), -1)
				if err != nil || sl.Len == 0 {
					t.Fatalf("read at %d: %v (%d bytes)", off, err, sl.Len)
				}
				it.records = sl
			}
			it.omit = rng.IntN(3) == 0
			if it.records.Len > 0 {
				if it.omit {
					omitted++
				} else {
					kept++
				}
			}
			items = append(items, it)
		}
		f := getFetchFrame()
		f.build(frameHead{version: v}, items, nil)
		for i := range items {
			if items[i].records.Len != 0 {
				t.Fatalf("round %d: build left item %d its records", round, i)
			}
		}
		if len(f.slices) != kept {
			t.Fatalf("round %d: frame holds %d slices, want %d", round, len(f.slices), kept)
		}
		files := 0
		for _, p := range f.parts {
			if p.IsFile() {
				files++
			}
		}
		if files != kept {
			t.Fatalf("round %d: %d file-range parts, want %d", round, files, kept)
		}
		f.materialize(t) // the pinned ranges still read
		// The log still holds every segment: a release too many would have
		// closed one.
		if c := fs.counts(); len(c) != 0 {
			t.Fatalf("round %d (%d omitted): segment files closed while the log holds them: %v", round, omitted, c)
		}
		if n := runPartReleases(t, append([]netpoll.Part(nil), f.parts...)); n != 1 {
			t.Fatalf("round %d: %d release callbacks, want exactly 1", round, n)
		}
		if c := fs.counts(); len(c) != 0 {
			t.Fatalf("round %d: segment files closed while the log holds them: %v", round, c)
		}
	}
	// Dropping the log lets go of its own references: each segment file
	// closes now, exactly once, if every slice was released.
	names, err := fs.ReadDir("/data/rel-0")
	if err != nil {
		t.Fatal(err)
	}
	segs := 0
	for _, name := range names {
		if strings.HasSuffix(name, ".log") {
			segs++
		}
	}
	if segs < 4 {
		t.Fatalf("%d segments, want several", segs)
	}
	if err := st.DeleteLog("rel", 0); err != nil {
		t.Fatal(err)
	}
	c := fs.counts()
	if len(c) != segs {
		t.Fatalf("%d of %d segment files closed after the log let go (a slice never released?): %v", len(c), segs, c)
	}
	for name, k := range c {
		if k != 1 {
			t.Fatalf("%s closed %d times", name, k)
		}
	}
}

func BenchmarkFetchFrame(b *testing.B) {
	file := &frameTestFile{data: make([]byte, 1<<20)}
	items := make([]fetchItem, 12)
	var id [16]byte
	id[3] = 9
	fill := func() {
		for i := range items {
			items[i] = fetchItem{topic: "bench", topicID: id, partition: int32(i)}
			items[i].hw, items[i].lso, items[i].logStart = 1e6, 1e6, 0
			items[i].records = segstore.Slice{File: file, Pos: int64(i) << 16, Len: 1 << 16}
		}
	}
	b.ReportAllocs()
	b.SetBytes(12 << 16)
	for b.Loop() {
		fill()
		f := getFetchFrame()
		f.build(frameHead{version: 16, sessionID: 7}, items, nil)
		if len(f.parts) != 25 {
			b.Fatalf("%d parts", len(f.parts))
		}
		f.done()
	}
}
