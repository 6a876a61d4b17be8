package segstore

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// The swap of a cleaned segment, Kafka's file protocol, crash-safe at every
// step. For a group of old segments whose first base offset is B:
//
//  1. B.index.cleaned, B.timeindex.cleaned, B.log.cleaned are written and
//     fsynced (cleanGroup).
//  2. Each is renamed to .swap, the .log last, and the directory synced.
//     B.log.swap existing is the commit point: it is whole.
//  3. Under Log.mu, the segment list swaps the old segments for the new one
//     (whose descriptor stays valid across the renames below). Readers
//     holding old segments keep reading them until they release them.
//  4. The old segments' files are renamed to .deleted, the directory synced,
//     and the .deleted files removed.
//  5. The .swap files are renamed to their final names and the directory
//     synced.
//
// Recovery at open (finishSwaps) removes *.cleaned (a crash before the
// commit point: the old segments are intact), completes every B.log.swap
// (it replaces the segments whose base offsets fall inside the offsets it
// holds, then takes its final names), and removes *.deleted and stray index
// swaps. Old segments above the last offset the swap holds may survive a
// crash in step 4; that is safe, because everything they hold that the
// cleaned copy dropped was superseded by records after them, which are
// still there: the log is less compacted, never different.
//
// Log.cl.files is held from step 1 to 5 (the whole pass), so retention,
// truncation, DeleteRecords and DeleteLog never remove or rename segment
// files while names are in flux; they ask a running pass to stop first.

const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
	deletedSuffix = ".deleted"
)

// segExts are a segment's files; the .log goes last in renames to .swap.
var segExts = []string{".index", ".timeindex", ".log"}

// removeCleaned deletes what an abandoned cleanGroup wrote.
func removeCleaned(fs vfs.FS, dir string, base int64) {
	for _, ext := range segExts {
		_ = fs.Remove(segName(dir, base, ext+cleanedSuffix))
	}
}

// swapIn replaces group with cs (steps 2 to 5). Before the commit point a
// failure leaves the old segments in place; after it, a failure leaves the
// files for recovery to finish and makes the log's error sticky, since its
// state on disk is no longer what it serves.
func (p *pass) swapIn(group []*segment, cs *segment) error {
	l, fs := p.l, p.l.store.fs
	base := cs.base
	for _, ext := range segExts {
		if err := fs.Rename(segName(l.dir, base, ext+cleanedSuffix), segName(l.dir, base, ext+swapSuffix)); err != nil {
			for _, e := range segExts {
				_ = fs.Remove(segName(l.dir, base, e+swapSuffix))
			}
			cs.f.Close()
			removeCleaned(fs, l.dir, base)
			return storageErr("rename cleaned segment", err)
		}
	}
	if err := fs.SyncDir(l.dir); err != nil {
		cs.f.Close()
		return l.failSwap(storageErr("sync partition dir after cleaning", err))
	}

	l.mu.Lock()
	i := l.groupIndexLocked(group)
	if i < 0 {
		l.mu.Unlock()
		cs.f.Close()
		return l.failSwap(fmt.Errorf("BUG: segments %d.. changed during cleaning though the cleaner held the files lock", base))
	}
	segs := make([]*segment, 0, len(l.segs)-len(group)+1)
	segs = append(append(append(segs, l.segs[:i]...), cs), l.segs[i+len(group):]...)
	l.segs = segs
	l.mu.Unlock()

	var errs []error
	for _, s := range group {
		s.deleted.Store(true)
		for _, ext := range segExts {
			name := segName(s.dir, s.base, ext)
			if err := fs.Rename(name, name+deletedSuffix); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, fs.SyncDir(l.dir))
	if err := errors.Join(errs...); err != nil {
		// An old segment may still have its name: were the .swap files to
		// take theirs now, two segments would claim the same offsets on
		// disk, and the next open would drop the later one and everything
		// after it. The .swap files stay for recovery (completeSwap).
		for _, s := range group {
			s.release()
		}
		return l.failSwap(storageErr("retire cleaned segments", err))
	}
	for _, s := range group {
		for _, ext := range segExts {
			if err := fs.Remove(segName(s.dir, s.base, ext+deletedSuffix)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		s.release() // the log's reference; readers may still hold theirs
	}
	for _, ext := range segExts {
		errs = append(errs, fs.Rename(segName(l.dir, base, ext+swapSuffix), segName(l.dir, base, ext)))
	}
	errs = append(errs, fs.SyncDir(l.dir))
	if err := errors.Join(errs...); err != nil {
		return l.failSwap(storageErr("finish segment swap", err))
	}
	return nil
}

// groupIndexLocked returns where group sits, contiguous, in l.segs, or -1.
func (l *Log) groupIndexLocked(group []*segment) int {
	if l.closed || l.err != nil {
		return -1
	}
	for i, s := range l.segs {
		if s != group[0] {
			continue
		}
		if i+len(group) >= len(l.segs) { // the active segment is never cleaned
			return -1
		}
		for j, g := range group {
			if l.segs[i+j] != g {
				return -1
			}
		}
		return i
	}
	return -1
}

// failSwap makes err the log's sticky error: the partition goes offline
// until a restart's recovery finishes the swap from what is on disk.
func (l *Log) failSwap(err error) error {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	return err
}

// finishSwaps puts a partition directory in order after a crash during
// cleaning, before its segments are listed (see the protocol above).
func finishSwaps(fs vfs.FS, dir string) (bool, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return false, err
	}
	changed := false
	for _, n := range names {
		if strings.HasSuffix(n, cleanedSuffix) {
			changed = true
			if err := fs.Remove(dir + "/" + n); err != nil {
				return false, err
			}
		}
	}
	for _, n := range names {
		if base, ok := parseSegName(strings.TrimSuffix(n, swapSuffix)); ok && strings.HasSuffix(n, ".log"+swapSuffix) {
			changed = true
			if err := completeSwap(fs, dir, base); err != nil {
				return false, fmt.Errorf("finish the swap of cleaned segment %s: %w", n, err)
			}
		}
	}
	if names, err = fs.ReadDir(dir); err != nil {
		return false, err
	}
	for _, n := range names {
		if strings.HasSuffix(n, deletedSuffix) || strings.HasSuffix(n, swapSuffix) {
			changed = true
			if err := fs.Remove(dir + "/" + n); err != nil {
				return false, err
			}
		}
	}
	if changed {
		return true, fs.SyncDir(dir)
	}
	return false, nil
}

// completeSwap finishes the swap of B.log.swap: segments whose base offset
// lies in [B, end of the swap's data) go, then the swap takes B's names. An
// index without its swap is removed rather than trusted (it may be the old
// segment's) and is rebuilt from the data.
func completeSwap(fs vfs.FS, dir string, base int64) error {
	f, err := fs.Open(segName(dir, base, ".log"+swapSuffix))
	if err != nil {
		return err
	}
	s := &segment{base: base, dir: dir, f: f}
	end := base
	size, err := f.Size()
	if err == nil {
		// It was synced before it was named .swap: a scan error here is
		// corruption, which the normal recovery of the segment handles.
		_ = s.scan(0, size, func(_ int64, h *batchHeader) bool {
			end = max(end, h.LastOffset()+1)
			return true
		})
	}
	f.Close()
	if err != nil {
		return err
	}
	names, err := fs.ReadDir(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, n := range names {
		if b, ok := parseSegName(n); ok && b > base && b < end {
			for _, ext := range segExts {
				if err := fs.Remove(segName(dir, b, ext)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
					return err
				}
			}
			removed = true
		}
	}
	// The removals are durable before the swap takes B's name: otherwise a
	// crash could keep the rename and lose a removal, and the old segment
	// would overlap the cleaned one.
	if removed {
		if err := fs.SyncDir(dir); err != nil {
			return err
		}
	}
	for _, ext := range segExts {
		final, swap := segName(dir, base, ext), segName(dir, base, ext+swapSuffix)
		if fs.Exists(swap) {
			err = fs.Rename(swap, final)
		} else if err = fs.Remove(final); errors.Is(err, iofs.ErrNotExist) {
			err = nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cleanerOffsetFile is Kafka's per-data-dir record of how far each
// compacted log is clean: "topic partition offset" lines.
const cleanerOffsetFile = "cleaner-offset-checkpoint"

// writeCleanerOffsets writes the cleaner checkpoint of logs (sorted).
// Called with st.ckMu held.
func (st *Store) writeCleanerOffsets(logs []*Log) error {
	var lines [][]string
	for _, l := range logs {
		l.mu.Lock()
		to := l.cl.cleanedTo
		l.mu.Unlock()
		if to > 0 {
			lines = append(lines, []string{l.topic, strconv.Itoa(int(l.partition)), strconv.FormatInt(to, 10)})
		}
	}
	return writeCheckpoint(st.fs, st.cfg.Dir+"/"+cleanerOffsetFile, lines)
}
