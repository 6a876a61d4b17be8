package node

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"

	"github.com/sluicemq/sluice/netpoll"
	"github.com/sluicemq/sluice/segstore"
)

// fetchframe.go encodes Fetch responses (v4-v16) by hand, the one place
// sluice does not let kmsg encode a message: the records of each partition
// must stay in the segment file and go out with sendfile, so the response is
// a list of netpoll parts — encoded bytes, a file range, encoded bytes, ... —
// that kmsg cannot produce. The property test in fetchframe_test.go holds it
// byte-for-byte to kmsg.FetchResponse.AppendTo.

// fetchResult is what one partition answers.
type fetchResult struct {
	err               int16
	hw, lso, logStart int64
	// records holds whole batches; Len 0 is sent as an empty record set
	// (not null), as Kafka does. build takes ownership of it.
	records segstore.Slice
	// abortedEmpty sends an empty aborted-transactions list (read_committed)
	// instead of null.
	abortedEmpty bool
	// diverging is the DivergingEpoch tag (v12+).
	diverging bool
	divEpoch  int32
	divEnd    int64
	// hasLeader is the CurrentLeader tag (v12+; set from v16 on, KIP-951).
	hasLeader             bool
	leaderID, leaderEpoch int32
	// omit leaves the partition out of the response (an incremental fetch
	// session with nothing new to say about it).
	omit bool
}

// frameHead is the response's top level.
type frameHead struct {
	version   int16
	throttle  int32
	err       int16 // v7+: fetch session errors
	sessionID int32 // v7+
}

// frameBroker is one NodeEndpoints entry (v16+ tag 0).
type frameBroker struct {
	id   int32
	host string
	port int32
	rack *string
}

// fetchFrame is one encoded response. It owns the record slices it frames
// until netpoll runs its release callback, which also returns the frame to
// the pool. Not safe for concurrent use.
type fetchFrame struct {
	buf    []byte
	cuts   []int            // cuts[i]: where in buf slices[i]'s bytes go
	slices []segstore.Slice // pinned segments, released with the frame
	parts  []netpoll.Part
	size   int64 // total bytes of parts
	// release is f.done bound once, so framing allocates no closure.
	release func()
}

// fetchFrames recycles frames; New is set in init (done refers to the pool).
var fetchFrames sync.Pool

func init() {
	fetchFrames.New = func() any {
		f := &fetchFrame{buf: make([]byte, 0, 1024)}
		f.release = f.done
		return f
	}
}

func getFetchFrame() *fetchFrame { return fetchFrames.Get().(*fetchFrame) }

// done releases the pinned segments and recycles the frame. netpoll calls it
// (via the last part) once the response is written or dropped.
func (f *fetchFrame) done() {
	for i := range f.slices {
		f.slices[i].Release()
	}
	clear(f.slices)
	clear(f.parts)
	f.slices, f.parts, f.cuts, f.buf, f.size = f.slices[:0], f.parts[:0], f.cuts[:0], f.buf[:0], 0
	if cap(f.buf) <= 1<<20 && cap(f.parts) <= 1<<13 {
		fetchFrames.Put(f)
	}
}

// build encodes the response into f.parts. items are the partitions in
// response order; consecutive items of one topic form one topic entry
// (a topic may repeat, as in Kafka's responses). It moves every item's
// records into f, leaving the items' slices empty. brokers are the v16
// NodeEndpoints (nil: none).
func (f *fetchFrame) build(h frameHead, items []fetchItem, brokers []frameBroker) {
	v, flex := h.version, h.version >= 12
	b := kbin.AppendInt32(f.buf[:0], h.throttle)
	if v >= 7 {
		b = kbin.AppendInt16(b, h.err)
		b = kbin.AppendInt32(b, h.sessionID)
	}
	nt := 0
	var prev *fetchItem
	for i := range items {
		it := &items[i]
		if it.omit {
			it.records.Release()
			it.records = segstore.Slice{}
			continue
		}
		if prev == nil || !sameFetchTopic(v, prev, it) {
			nt++
		}
		prev = it
	}
	b = appendFrameArrayLen(b, nt, flex)
	for i := 0; i < len(items); {
		if items[i].omit {
			i++
			continue
		}
		first := &items[i]
		np, end := 0, i
		for ; end < len(items); end++ {
			if items[end].omit {
				continue
			}
			if !sameFetchTopic(v, first, &items[end]) {
				break
			}
			np++
		}
		if v >= 13 {
			b = kbin.AppendUuid(b, first.topicID)
		} else if flex {
			b = kbin.AppendCompactString(b, first.topic)
		} else {
			b = kbin.AppendString(b, first.topic)
		}
		b = appendFrameArrayLen(b, np, flex)
		for ; i < end; i++ {
			if !items[i].omit {
				b = f.appendPartition(b, v, &items[i])
			}
		}
		if flex {
			b = append(b, 0) // topic tagged fields
		}
	}
	if flex {
		if len(brokers) == 0 {
			b = append(b, 0)
		} else {
			b = append(b, 1, 0) // one tag: 0, NodeEndpoints
			at := len(b)
			b = appendFrameBrokers(b, brokers)
			body := len(b) - at
			// Prefix the body with its uvarint size: shift it right.
			var sz [5]byte
			szb := kbin.AppendUvarint(sz[:0], uint32(body))
			b = append(b, szb...)
			copy(b[at+len(szb):], b[at:at+body])
			copy(b[at:], szb)
		}
	}
	f.buf = b
	f.frameParts()
}

func sameFetchTopic(v int16, a, b *fetchItem) bool {
	if v >= 13 {
		return a.topicID == b.topicID
	}
	return a.topic == b.topic
}

func appendFrameArrayLen(b []byte, n int, flex bool) []byte {
	if flex {
		return kbin.AppendUvarint(b, uint32(n+1))
	}
	return kbin.AppendInt32(b, int32(n))
}

func (f *fetchFrame) appendPartition(b []byte, v int16, it *fetchItem) []byte {
	flex := v >= 12
	r := &it.fetchResult
	b = kbin.AppendInt32(b, it.partition)
	b = kbin.AppendInt16(b, r.err)
	b = kbin.AppendInt64(b, r.hw)
	b = kbin.AppendInt64(b, r.lso)
	if v >= 5 {
		b = kbin.AppendInt64(b, r.logStart)
	}
	switch {
	case flex && r.abortedEmpty:
		b = append(b, 1)
	case flex:
		b = append(b, 0)
	case r.abortedEmpty:
		b = kbin.AppendInt32(b, 0)
	default:
		b = kbin.AppendInt32(b, -1)
	}
	if v >= 11 {
		b = kbin.AppendInt32(b, -1) // preferred read replica: none
	}
	n := r.records.Len
	if flex {
		b = kbin.AppendUvarint(b, uint32(n+1))
	} else {
		b = kbin.AppendInt32(b, int32(n))
	}
	if n > 0 {
		f.cuts = append(f.cuts, len(b))
		f.slices = append(f.slices, r.records)
		r.records = segstore.Slice{}
	}
	if flex {
		var tags byte
		if r.diverging {
			tags++
		}
		if r.hasLeader {
			tags++
		}
		b = append(b, tags)
		if r.diverging {
			b = append(b, 0, 4+8+1) // tag 0, size
			b = kbin.AppendInt32(b, r.divEpoch)
			b = kbin.AppendInt64(b, r.divEnd)
			b = append(b, 0)
		}
		if r.hasLeader {
			b = append(b, 1, 4+4+1) // tag 1, size
			b = kbin.AppendInt32(b, r.leaderID)
			b = kbin.AppendInt32(b, r.leaderEpoch)
			b = append(b, 0)
		}
	}
	return b
}

func appendFrameBrokers(b []byte, brokers []frameBroker) []byte {
	b = kbin.AppendUvarint(b, uint32(len(brokers)+1))
	for i := range brokers {
		br := &brokers[i]
		b = kbin.AppendInt32(b, br.id)
		b = kbin.AppendCompactString(b, br.host)
		b = kbin.AppendInt32(b, br.port)
		b = kbin.AppendCompactNullableString(b, br.rack)
		b = append(b, 0)
	}
	return b
}

// frameParts cuts f.buf around the file ranges. The release callback goes on
// the last part: netpoll releases a response's parts together once it is
// written, so the segments stay pinned until every range has gone out.
func (f *fetchFrame) frameParts() {
	b, prev := f.buf, 0
	f.size = int64(len(b))
	for i, cut := range f.cuts {
		if cut > prev {
			f.parts = append(f.parts, netpoll.Bytes(b[prev:cut]))
		}
		s := &f.slices[i]
		f.parts = append(f.parts, netpoll.FileRange(s.File, s.Pos, s.Len))
		f.size += s.Len
		prev = cut
	}
	if len(b) > prev || len(f.parts) == 0 {
		f.parts = append(f.parts, netpoll.Bytes(b[prev:]))
	}
	last := len(f.parts) - 1
	f.parts[last] = f.parts[last].WithRelease(f.release)
}
