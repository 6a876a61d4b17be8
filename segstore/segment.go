package segstore

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// segment is one `.log` file and its indexes. Its fields are guarded by the
// owning Log's mu, except refs (atomic) and f (immutable after open).
type segment struct {
	base int64
	dir  string
	f    vfs.File

	// size is the byte length of completed writes: everything below it is
	// whole batches and readable.
	size int64
	// next is the offset after the last batch in the segment.
	next int64
	// synced is the byte length covered by a completed fdatasync.
	synced int64
	// dropped is how far a cold log dropped the segment's pages from the
	// page cache (coldpages.go).
	dropped int64
	// dw is the direct-write state of a cold log's segment (direct.go).
	dw directState

	ix         segIndex
	maxTs      int64  // largest batch max timestamp, -1 when empty
	relOfMaxTs uint32 // last offset (relative) of the batch holding maxTs
	firstTs    int64  // first batch's max timestamp: what segment.ms counts from
	// hasRecords: some batch holds a record. Compaction can leave a segment
	// with none (only emptied batches, or nothing), whose maxTs is -1 like
	// that of one whose records carry no timestamp (-1): retention must
	// tell them apart.
	hasRecords bool
	// indexOnDisk says the .index/.timeindex files hold the current entries.
	indexOnDisk bool

	// refs counts the Log's own reference plus one per outstanding Slice; the
	// file is closed (and, once deleted, gone) when it drops to zero.
	refs    atomic.Int32
	deleted atomic.Bool
}

func segName(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// parseSegName returns the base offset of a `.log` file name.
func parseSegName(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".log")
	if !ok || len(s) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(s, 10, 64)
	return base, err == nil && base >= 0
}

func createSegment(fs vfs.FS, dir string, base int64) (*segment, error) {
	f, err := fs.Create(segName(dir, base, ".log"))
	if err != nil {
		return nil, err
	}
	// Stale index files from an earlier, truncated life of this offset would be
	// loaded on the next open; drop them.
	_ = fs.Remove(segName(dir, base, ".index"))
	_ = fs.Remove(segName(dir, base, ".timeindex"))
	if err := fs.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	s := &segment{base: base, dir: dir, f: f, next: base, maxTs: -1, firstTs: -1}
	s.refs.Store(1)
	return s, nil
}

// acquire takes a reader's reference. Called under the Log's mu, so the Log's
// own reference is still held and refs cannot be zero.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the file.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeDirectLocked()
		s.f.Close()
	}
}

// writeIndexes writes the in-memory indexes to their files.
func (s *segment) writeIndexes(fs vfs.FS) error {
	if s.indexOnDisk {
		return nil
	}
	for _, x := range []struct {
		ext  string
		data []byte
	}{{".index", s.ix.encodeOffsets()}, {".timeindex", s.ix.encodeTimes()}} {
		if err := vfs.WriteFileAtomic(fs, segName(s.dir, s.base, x.ext), x.data); err != nil {
			return err
		}
	}
	s.indexOnDisk = true
	return nil
}

// remove deletes the segment's files; the descriptor stays usable by readers
// still holding references.
func (s *segment) remove(fs vfs.FS) error {
	s.deleted.Store(true)
	var errs []error
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		if err := fs.Remove(segName(s.dir, s.base, ext)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// headerBuf is scratch space for scanning batch headers.
var headerBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// scan calls fn with the position and header of each batch from pos until fn
// returns false or end is reached. It reads headers in chunks so a scan over
// small batches costs few syscalls. It does not verify CRCs.
func (s *segment) scan(pos, end int64, fn func(pos int64, h *batchHeader) bool) error {
	bp := headerBufs.Get().(*[]byte)
	defer headerBufs.Put(bp)
	buf := *bp
	var chunkPos, chunkLen int64 = 0, 0
	for pos < end {
		if pos+batchHeaderSize > end {
			return corrupt("partial batch header at position %d of %d", pos, end)
		}
		if pos < chunkPos || pos+batchHeaderSize > chunkPos+chunkLen {
			n := min(int64(len(buf)), end-pos)
			k, err := s.f.ReadAt(buf[:n], pos)
			if int64(k) < batchHeaderSize {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("read batch header at %d: %w", pos, err)
			}
			chunkPos, chunkLen = pos, int64(k)
		}
		h := parseHeader(buf[pos-chunkPos:])
		if h.Size() < batchHeaderSize {
			return corrupt("batch at position %d claims %d bytes", pos, h.Size())
		}
		if !fn(pos, &h) {
			return nil
		}
		pos += h.Size()
	}
	return nil
}

// find returns the position of the batch holding offset (or the first batch
// after it) and that batch's header; found is false when offset is at or past
// end. Called with the Log's mu held (it reads the index).
func (s *segment) find(offset int64, end int64) (pos int64, h batchHeader, found bool, err error) {
	offset = max(offset, s.base)
	return s.findFrom(offset, int64(s.ix.lookup(uint32(offset-s.base))), end)
}
