package ctrl

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
)

// WAL is the controller's durable raft storage in one directory: wal.log (hard states and entries, appended) and
// snap-<index>.snap files (newest two kept). Every Save and SaveSnapshot is fsynced before it returns, which is
// what raft's Ready contract needs before messages go out. A failed write or fsync is sticky: every later call
// returns it, so a controller never carries on over a log it cannot trust (pebble's rule).
// Not safe for concurrent use; Node serializes calls.
type WAL struct {
	fs   FS
	dir  string
	f    File
	hs   raftpb.HardState
	err  error // sticky
	buf  []byte
	snap uint64 // index of the newest snapshot file
}

// Recovered is what OpenWAL read back.
type Recovered struct {
	Snapshot  raftpb.Snapshot
	HardState raftpb.HardState
	Entries   []raftpb.Entry // after Snapshot's index, in order, conflicts already resolved
	// Dropped describes a torn or corrupt tail that was cut off (empty if none).
	Dropped string
}

const walName = "wal.log"

func snapName(index uint64) string { return fmt.Sprintf("snap-%020d.snap", index) }

// OpenWAL reads the directory back (creating it if missing) and opens the log for appending.
func OpenWAL(fsys FS, dir string) (*WAL, *Recovered, error) {
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, nil, fmt.Errorf("ctrl: wal dir: %w", err)
	}
	w := &WAL{fs: fsys, dir: dir}
	rec := &Recovered{}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("ctrl: wal dir: %w", err)
	}
	var snaps []string
	for _, n := range names {
		if strings.HasPrefix(n, "snap-") && strings.HasSuffix(n, ".snap") {
			snaps = append(snaps, n)
		}
	}
	slices.Sort(snaps)
	// Newest readable snapshot wins; a corrupt newest one (crash mid-write is prevented by rename, but disks rot)
	// falls back to the previous one, whose following entries the log still holds.
	for i := len(snaps) - 1; i >= 0; i-- {
		if s, err := w.readSnapshot(snaps[i]); err == nil {
			rec.Snapshot, w.snap = s, s.Metadata.Index
			break
		} else if i == 0 {
			return nil, nil, err
		}
	}
	b, err := fsys.ReadFile(path.Join(dir, walName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("ctrl: read wal: %w", err)
	}
	frames, rest, ferr := readFrames(b)
	for _, fr := range frames {
		switch fr.kind {
		case frameHardState:
			if err := rec.HardState.Unmarshal(fr.body); err != nil {
				return nil, nil, fmt.Errorf("ctrl: wal hard state: %w", err)
			}
		case frameEntry:
			var e raftpb.Entry
			if err := e.Unmarshal(fr.body); err != nil {
				return nil, nil, fmt.Errorf("ctrl: wal entry: %w", err)
			}
			if n := len(rec.Entries); n > 0 && e.Index > rec.Entries[n-1].Index+1 {
				return nil, nil, fmt.Errorf("ctrl: wal: entry %d follows entry %d; the log has a gap", e.Index, rec.Entries[n-1].Index)
			}
			rec.Entries = appendEntry(rec.Entries, e)
		default:
			return nil, nil, fmt.Errorf("ctrl: wal: unexpected frame kind %d", fr.kind)
		}
	}
	si := rec.Snapshot.Metadata.Index
	rec.Entries = slices.DeleteFunc(rec.Entries, func(e raftpb.Entry) bool { return e.Index <= si })
	if len(rec.Entries) > 0 && rec.Entries[0].Index != si+1 {
		return nil, nil, fmt.Errorf("ctrl: wal: entries start at %d but the snapshot ends at %d", rec.Entries[0].Index, si)
	}
	if rec.HardState.Commit < si {
		rec.HardState.Commit = si
	}
	w.hs = rec.HardState
	if ferr != nil {
		rec.Dropped = fmt.Sprintf("%v (%d bytes dropped)", ferr, rest)
		// Rewrite so new frames never follow garbage.
		if err := w.rewrite(rec.HardState, rec.Entries); err != nil {
			return nil, nil, err
		}
	} else if w.f, err = fsys.OpenAppend(path.Join(dir, walName)); err != nil {
		return nil, nil, fmt.Errorf("ctrl: open wal: %w", err)
	}
	return w, rec, nil
}

// appendEntry appends e, first dropping any entries at or after its index: raft overwrites a conflicting suffix.
func appendEntry(es []raftpb.Entry, e raftpb.Entry) []raftpb.Entry {
	if n := len(es); n > 0 && es[n-1].Index >= e.Index {
		i, _ := slices.BinarySearchFunc(es, e.Index, func(x raftpb.Entry, idx uint64) int {
			return int(int64(x.Index) - int64(idx))
		})
		es = es[:i]
	}
	return append(es, e)
}

func (w *WAL) readSnapshot(name string) (raftpb.Snapshot, error) {
	var s raftpb.Snapshot
	b, err := w.fs.ReadFile(path.Join(w.dir, name))
	if err != nil {
		return s, fmt.Errorf("ctrl: read %s: %w", name, err)
	}
	frames, _, err := readFrames(b)
	if err != nil || len(frames) != 1 || frames[0].kind != frameSnapshot {
		return s, fmt.Errorf("ctrl: snapshot %s is corrupt (%v)", name, err)
	}
	if err := s.Unmarshal(frames[0].body); err != nil {
		return s, fmt.Errorf("ctrl: snapshot %s: %w", name, err)
	}
	return s, nil
}

// Save appends a hard state (if not empty and changed) and entries, then fsyncs.
func (w *WAL) Save(hs raftpb.HardState, ents []raftpb.Entry) error {
	if w.err != nil {
		return w.err
	}
	w.buf = w.buf[:0]
	for i := range ents {
		b, err := ents[i].Marshal()
		if err != nil {
			return w.fail(err)
		}
		w.buf = appendFrame(w.buf, frameEntry, b)
	}
	if !isEmptyHardState(hs) && hs != w.hs {
		b, err := hs.Marshal()
		if err != nil {
			return w.fail(err)
		}
		w.buf = appendFrame(w.buf, frameHardState, b)
		w.hs = hs
	}
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return w.fail(err)
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(err)
	}
	return nil
}

func isEmptyHardState(hs raftpb.HardState) bool { return hs == raftpb.HardState{} }

func (w *WAL) fail(err error) error {
	w.err = fmt.Errorf("ctrl: wal failed, controller storage is unusable until restart: %w", err)
	return w.err
}
