package node

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch sessions (KIP-227), the way Kafka's FetchSession.scala keeps them.
//
// A consumer opens a session with a full fetch at epoch 0; the broker
// remembers the partitions and what it last told the client about each
// (high watermark, last stable offset, log start offset). Later fetches
// carry the session id and the next epoch and list only partitions whose
// fetch position changed (plus ForgottenTopics to drop); the broker reads
// every partition of the session and answers only those with records, an
// error, or news. Epoch -1 is a sessionless full fetch (and closes the named
// session). Sessions are keyed by id, not by connection: a client may
// continue its session on a new connection, as Kafka allows.
//
// Concurrency: fetchState.mu guards the session map; fetchSession.mu guards
// one session's partitions and epoch. Lock order: fetchState.mu, then
// fetchSession.mu (eviction reads sizes through atomics and takes no session
// lock).

const (
	// defaultFetchSessionSlots is Kafka's
	// max.incremental.fetch.session.cache.slots default.
	defaultFetchSessionSlots = 1000
	// fetchSessionEvictAfter is Kafka's minimum session age before another
	// session may evict it, and the idle time after which any new session
	// may (KafkaServer.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS).
	fetchSessionEvictAfter = 2 * time.Minute
)

// sessKey names a session partition: by topic id for sessions opened at v13+,
// by name before.
type sessKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// sessPart is one partition of a session: the client's fetch parameters and
// what the last response said about it (-1: nothing yet, always answer).
type sessPart struct {
	key               sessKey
	offset            int64
	maxBytes          int32
	curEpoch          int32
	lastFetchedEpoch  int32
	hw, lso, logStart int64
	moved, forgotten  bool // scratch marks for filter and sessionFor
}

type fetchSession struct {
	id       int32
	topicIDs bool
	created  time.Time

	size     atomic.Int32 // len(parts), for eviction
	lastUsed atomic.Int64 // unix nanos

	mu sync.Mutex
	// epoch is the epoch the next request must carry.
	epoch   int32
	parts   []*sessPart
	byKey   map[sessKey]*sessPart
	scratch []*sessPart
}

// nextFetchEpoch is Kafka's FetchMetadata.nextEpoch.
func nextFetchEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// sessionFor looks up the session an incremental request names, applies its
// changes and bumps the epoch. It returns the session's partitions as items
// (in the session's order) and the epoch the answer must still find, or a
// top-level error code. A session left empty is closed: the request is
// answered sessionless (s == nil, code 0), as Kafka does.
func (fs *fetchState) sessionFor(req *kmsg.FetchRequest, items []fetchItem) (s *fetchSession, epoch int32, out []fetchItem, code int16) {
	fs.mu.Lock()
	s = fs.sessions[req.SessionID]
	fs.mu.Unlock()
	if s == nil {
		return nil, 0, items, kerr.FetchSessionIDNotFound.Code
	}
	epoch, out, code, empty := s.update(req, fs.now(), items)
	if code != 0 {
		return nil, 0, out, code
	}
	if !empty {
		return s, epoch, out, 0
	}
	// Close the emptied session, taking the locks in order (fs.mu, then
	// s.mu) and unless a request that came in meanwhile filled it again.
	fs.mu.Lock()
	s.mu.Lock()
	if len(s.parts) == 0 && fs.sessions[s.id] == s {
		delete(fs.sessions, s.id)
	}
	s.mu.Unlock()
	fs.mu.Unlock()
	return nil, 0, items, 0
}

// update is sessionFor's work on the session, under s.mu; empty reports a
// session left without partitions (the caller closes it).
func (s *fetchSession) update(req *kmsg.FetchRequest, now time.Time, items []fetchItem) (epoch int32, out []fetchItem, code int16, empty bool) {
	byID := req.Version >= 13
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != req.SessionEpoch {
		return 0, items, kerr.InvalidFetchSessionEpoch.Code, false
	}
	if s.topicIDs != byID {
		return 0, items, kerr.FetchSessionTopicIDError.Code, false
	}
	for i := range req.Topics {
		rt := &req.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			k := sessKey{partition: rp.Partition}
			if byID {
				k.topicID = rt.TopicID
			} else {
				k.topic = rt.Topic
			}
			sp := s.byKey[k]
			if sp == nil {
				sp = &sessPart{key: k, hw: -1, lso: -1, logStart: -1}
				s.byKey[k] = sp
				s.parts = append(s.parts, sp)
			}
			sp.offset, sp.maxBytes = rp.FetchOffset, rp.PartitionMaxBytes
			sp.curEpoch, sp.lastFetchedEpoch = rp.CurrentLeaderEpoch, rp.LastFetchedEpoch
		}
	}
	if len(req.ForgottenTopics) > 0 {
		for i := range req.ForgottenTopics {
			ft := &req.ForgottenTopics[i]
			for _, p := range ft.Partitions {
				k := sessKey{partition: p}
				if byID {
					k.topicID = ft.TopicID
				} else {
					k.topic = ft.Topic
				}
				if sp := s.byKey[k]; sp != nil {
					delete(s.byKey, k)
					sp.forgotten = true
				}
			}
		}
		w := 0
		for _, sp := range s.parts {
			if !sp.forgotten {
				s.parts[w] = sp
				w++
			}
		}
		clear(s.parts[w:])
		s.parts = s.parts[:w]
	}
	s.size.Store(int32(len(s.parts)))
	if len(s.parts) == 0 {
		return 0, items, 0, true
	}
	s.lastUsed.Store(now.UnixNano())
	s.epoch = nextFetchEpoch(s.epoch)
	for _, sp := range s.parts {
		items = append(items, fetchItem{
			topic: sp.key.topic, topicID: sp.key.topicID, partition: sp.key.partition,
			offset: sp.offset, maxBytes: sp.maxBytes, curEpoch: sp.curEpoch,
			lastFetchedEpoch: sp.lastFetchedEpoch, sp: sp,
		})
	}
	return s.epoch, items, 0, false
}

// filter decides what an incremental answer says: partitions with records,
// an error, a diverging epoch or offsets that changed since the last answer
// (whose values it records); the rest are omitted. Partitions that returned
// records move to the end of the session so the next reads start with the
// others (Kafka's fairness rule under fetch.max.bytes). It reports false when
// another request of the session came in meanwhile: the answer is then
// INVALID_FETCH_SESSION_EPOCH.
func (s *fetchSession) filter(epoch int32, items []fetchItem) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return false
	}
	moved := 0
	for i := range items {
		it := &items[i]
		sp, r := it.sp, &it.fetchResult
		must := r.records.Len > 0 || r.err != 0 || r.diverging ||
			r.hw != sp.hw || r.lso != sp.lso || r.logStart != sp.logStart
		sp.hw, sp.lso, sp.logStart = r.hw, r.lso, r.logStart
		if r.err != 0 {
			sp.hw = -1 // re-send once the error is gone
		}
		it.omit = !must
		if r.records.Len > 0 {
			sp.moved = true
			moved++
		}
	}
	if moved > 0 {
		tail := s.scratch[:0]
		w := 0
		for _, sp := range s.parts {
			if sp.moved {
				sp.moved = false
				tail = append(tail, sp)
			} else {
				s.parts[w] = sp
				w++
			}
		}
		copy(s.parts[w:], tail)
		clear(tail)
		s.scratch = tail[:0]
	}
	return true
}

// createSession opens a session for a full fetch at epoch 0 from the
// answered items. It returns the new id, or 0 when the cache is full and no
// session may be evicted (the client then fetches without a session).
func (fs *fetchState) createSession(byID bool, items []fetchItem) int32 {
	now := fs.now()
	s := &fetchSession{topicIDs: byID, created: now, epoch: 1, byKey: make(map[sessKey]*sessPart, len(items))}
	s.lastUsed.Store(now.UnixNano())
	for i := range items {
		it := &items[i]
		k := sessKey{partition: it.partition}
		if byID {
			k.topicID = it.topicID
		} else {
			k.topic = it.topic
		}
		sp := s.byKey[k]
		if sp == nil {
			sp = &sessPart{key: k}
			s.byKey[k] = sp
			s.parts = append(s.parts, sp)
		}
		sp.offset, sp.maxBytes, sp.curEpoch, sp.lastFetchedEpoch = it.offset, it.maxBytes, it.curEpoch, it.lastFetchedEpoch
		sp.hw, sp.lso, sp.logStart = it.hw, it.lso, it.logStart
		if it.err != 0 {
			sp.hw = -1
		}
	}
	s.size.Store(int32(len(s.parts)))

	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.maxSessions <= 0 || len(fs.sessions) >= fs.maxSessions && !fs.evictLocked(now, len(s.parts)) {
		return 0
	}
	for {
		id := rand.Int32()
		if id != 0 && fs.sessions[id] == nil {
			s.id = id
			break
		}
	}
	fs.sessions[s.id] = s
	return s.id
}

// evictLocked makes room for a session of size partitions, as Kafka's
// FetchSessionCache.tryEvict: first a session idle for longer than
// fetchSessionEvictAfter, else the smallest session older than that if it is
// not bigger than the new one. fs.mu held.
func (fs *fetchState) evictLocked(now time.Time, size int) bool {
	var idle, small *fetchSession
	for _, s := range fs.sessions {
		if idle == nil || s.lastUsed.Load() < idle.lastUsed.Load() {
			idle = s
		}
		if now.Sub(s.created) > fetchSessionEvictAfter &&
			(small == nil || s.size.Load() < small.size.Load()) {
			small = s
		}
	}
	victim := small
	if idle != nil && now.UnixNano()-idle.lastUsed.Load() > int64(fetchSessionEvictAfter) {
		victim = idle
	} else if small != nil && int(small.size.Load()) > size {
		victim = nil
	}
	if victim == nil {
		return false
	}
	delete(fs.sessions, victim.id)
	return true
}

// closeSession drops a session (a full fetch naming it).
func (fs *fetchState) closeSession(id int32) {
	fs.mu.Lock()
	delete(fs.sessions, id)
	fs.mu.Unlock()
}
