package segstore

import (
	"errors"
	"fmt"
	"math"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// ErrCleanAborted is what Clean returns when its pass stopped because the
// log was being truncated, deleted or closed; nothing of the pass remains.
var ErrCleanAborted = errors.New("cleaning aborted")

// pass is one cleaning of one log: build the key → latest offset map over
// the dirty range, then rewrite every segment from the log start through the
// end of the mapped range, a group of small segments at a time, and swap
// each group's cleaned segment in.
type pass struct {
	c     *cleaner
	l     *Log
	cfg   LogConfig
	nowMs int64
	stats CleanStats
	// horizon is the earliest unix ms at which a tombstone this pass kept
	// may go (0: none kept); groupTombs says the current group kept one.
	horizon    int64
	groupTombs bool
}

func (p *pass) aborted() bool {
	return p.l.cl.abort.Load() > 0 || p.c.stopping.Load() || p.l.store.closing.Load()
}

// indexPos is where to start reading s for offset: a batch boundary at or
// before the batch holding it.
func (p *pass) indexPos(s *segment, offset int64) int64 {
	if offset <= s.base {
		return 0
	}
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	return int64(s.ix.lookup(uint32(min(offset-s.base, math.MaxUint32))))
}

// buildMap fills the offset map from the dirty range [firstDirty,
// uncleanable) of segs and returns where the mapped range ends: uncleanable,
// or, when the map fills first, the base offset of the first batch left out.
// Records of transactional and control batches are not mapped: sluice keeps
// no record of aborted transactions, so a transactional record never
// supersedes an older one (compaction stays conservative there).
func (p *pass) buildMap(segs []*segment, firstDirty, uncleanable int64) (int64, error) {
	m, rd := &p.c.m, &p.c.rd
	m.reset(uncleanable-firstDirty, p.c.cfg.DedupeBufferBytes)
	defer func() { p.stats.BytesRead += rd.read; rd.read = 0 }()
	for _, s := range segs {
		if s.next <= firstDirty || s.base >= uncleanable {
			continue
		}
		rd.reset(s, p.indexPos(s, firstDirty), s.size)
		for {
			if p.aborted() {
				return 0, ErrCleanAborted
			}
			b, h, _, err := rd.next()
			if err != nil || b == nil {
				if err != nil {
					return 0, err
				}
				break
			}
			if h.LastOffset() < firstDirty || h.RecordCount == 0 || h.Attributes&(attrControl|attrTransactional) != 0 {
				continue
			}
			if _, err := validateStored(b); err != nil {
				return 0, err
			}
			if !m.room(int(h.RecordCount)) {
				if m.used == 0 {
					return 0, fmt.Errorf("log.cleaner.dedupe.buffer.size=%d holds %d keys, too few for the batch of %d records at offset %d",
						p.c.cfg.DedupeBufferBytes, m.limit, h.RecordCount, h.BaseOffset)
				}
				return max(h.BaseOffset, firstDirty), nil
			}
			data, err := recordsOf(b, &h)
			if err != nil {
				return 0, err
			}
			err = walkBatchRecords(data, &h, func(r *record) error {
				if off := h.BaseOffset + int64(r.offDelta); off >= firstDirty && r.hasKey {
					m.put(r.key, off)
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
		}
	}
	return uncleanable, nil
}

// lastProducerBatches returns, per producer id, the base offset of its last
// batch in segs: the batch that stays, emptied, when compaction takes all
// its records, so that the producer's sequence state survives.
func lastProducerBatches(segs []*segment) (map[int64]int64, error) {
	last := map[int64]int64{}
	for _, s := range segs {
		err := s.scan(0, s.size, func(_ int64, h *batchHeader) bool {
			if h.ProducerID >= 0 {
				last[h.ProducerID] = h.BaseOffset
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return last, nil
}

// groupBySize splits segs into runs of adjacent segments that become one
// cleaned segment each: at most maxBytes together (their size before
// cleaning, so the result fits too) and offsets within 32 bits of the first
// base (relative offsets in the index), Kafka's groupSegmentsBySize.
func groupBySize(segs []*segment, maxBytes int64) [][]*segment {
	var groups [][]*segment
	for i := 0; i < len(segs); {
		size, j := segs[i].size, i+1
		for j < len(segs) && size+segs[j].size <= maxBytes && segs[j].next-1-segs[i].base <= math.MaxInt32 {
			size += segs[j].size
			j++
		}
		groups = append(groups, segs[i:j])
		i = j
	}
	return groups
}

// keep decides one record: kept unless a later record of its key is mapped,
// or it is a tombstone that may expire. Records from mapEnd on and keyless
// records (older data: Append refuses them on compacted logs) stay.
func (p *pass) keep(h *batchHeader, r *record, mapEnd int64, mayExpire bool) bool {
	off := h.BaseOffset + int64(r.offDelta)
	if off >= mapEnd || !r.hasKey {
		return true
	}
	if latest := p.c.m.get(r.key); latest > off {
		return false
	}
	if !r.hasValue && h.Attributes&attrTransactional == 0 {
		if mayExpire {
			p.stats.TombstonesRemoved++
			return false
		}
		p.groupTombs = true
	}
	return true
}

// cleanGroup writes the cleaned copy of group as `<base>.log.cleaned` (and
// its indexes), synced, where base is the group's first base offset, and
// returns it as a segment ready to swap in.
//
// Tombstones: a tombstone that is the latest record of its key goes once
// the segment holding it at cleaning time has a largest timestamp more than
// delete.retention.ms in the past — a consumer reading from the start has
// that long after the newest record of the tombstone's segment was written
// to see it. Tombstones of transactional batches are kept (see buildMap).
func (p *pass) cleanGroup(group []*segment, lastOf map[int64]int64, mapEnd int64) (*segment, error) {
	st, l := p.l.store, p.l
	base := group[0].base
	f, err := st.fs.Create(segName(l.dir, base, ".log"+cleanedSuffix))
	if err != nil {
		return nil, storageErr("create cleaned segment", err)
	}
	cs := &segment{base: base, dir: l.dir, f: f, next: base, maxTs: -1, firstTs: -1}
	cs.refs.Store(1)
	if err := p.writeGroup(cs, group, lastOf, mapEnd); err != nil {
		f.Close()
		removeCleaned(st.fs, l.dir, base)
		return nil, err
	}
	return cs, nil
}

func (p *pass) writeGroup(cs *segment, group []*segment, lastOf map[int64]int64, mapEnd int64) error {
	rd, wr, bb := &p.c.rd, &p.c.wr, &p.c.bb
	defer func() { p.stats.BytesRead += rd.read; rd.read = 0 }()
	wr.reset(cs.f)
	interval := p.cfg.IndexIntervalBytes
	p.groupTombs = false
	for _, s := range group {
		mayExpire := s.maxTs < p.nowMs-p.cfg.DeleteRetentionMs.Milliseconds()
		rd.reset(s, 0, s.size)
		for {
			if p.aborted() {
				return ErrCleanAborted
			}
			b, h, _, err := rd.next()
			if err != nil || b == nil {
				if err != nil {
					return err
				}
				break
			}
			if _, err := validateStored(b); err != nil {
				return err
			}
			isLast := h.ProducerID >= 0 && lastOf[h.ProducerID] == h.BaseOffset
			out := b
			switch {
			case h.Attributes&attrControl != 0:
			case h.RecordCount == 0:
				if !isLast {
					out = nil
				}
			default:
				var kept int32
				out, kept, err = bb.rebuild(b, &h, func(r *record) bool { return p.keep(&h, r, mapEnd, mayExpire) })
				if err != nil {
					return err
				}
				p.stats.RecordsRead += int64(h.RecordCount)
				p.stats.RecordsRemoved += int64(h.RecordCount - kept)
				if kept == 0 && isLast {
					out = bb.emptyBatch(b, &h)
				}
			}
			if out == nil {
				continue
			}
			oh := parseHeader(out)
			pos := wr.size()
			if pos+oh.Size() > math.MaxInt32 {
				return fmt.Errorf("cleaned segment %d would pass 2 GiB", cs.base)
			}
			if oh.RecordCount > 0 && oh.MaxTimestamp > cs.maxTs {
				cs.maxTs, cs.relOfMaxTs = oh.MaxTimestamp, uint32(oh.LastOffset()-cs.base)
			}
			cs.hasRecords = cs.hasRecords || oh.RecordCount > 0
			if cs.firstTs < 0 {
				cs.firstTs = oh.MaxTimestamp
			}
			cs.ix.maybeAdd(interval, uint32(oh.LastOffset()-cs.base), uint32(pos), oh.Size(), cs.maxTs, cs.relOfMaxTs)
			if err := wr.write(out); err != nil {
				return storageErr("write cleaned segment", err)
			}
			cs.next = oh.LastOffset() + 1
		}
	}
	if err := wr.flush(); err != nil {
		return storageErr("write cleaned segment", err)
	}
	cs.size, cs.synced, cs.indexOnDisk = wr.size(), wr.size(), true
	p.stats.BytesWritten += cs.size
	if p.groupTombs {
		due := cs.maxTs + p.cfg.DeleteRetentionMs.Milliseconds() + 1
		if p.horizon == 0 || due < p.horizon {
			p.horizon = due
		}
	}
	if err := cs.f.Sync(); err != nil {
		return storageErr("fdatasync cleaned segment", err)
	}
	fs := p.l.store.fs
	for _, x := range []struct {
		ext  string
		data []byte
	}{{".index", cs.ix.encodeOffsets()}, {".timeindex", cs.ix.encodeTimes()}} {
		if err := writeSynced(fs, segName(cs.dir, cs.base, x.ext+cleanedSuffix), x.data); err != nil {
			return storageErr("write cleaned index", err)
		}
	}
	return nil
}

// writeSynced creates name with data and fsyncs it.
func writeSynced(fs vfs.FS, name string, data []byte) error {
	f, err := fs.Create(name)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
