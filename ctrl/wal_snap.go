package ctrl

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
)

// SaveSnapshot writes snap to its own file durably (temp file, fsync, rename, directory fsync), then rewrites the
// log to hold only hs and ents (the entries after the snapshot), and removes snapshot files older than the
// previous one. A crash at any point leaves either the old files or the new ones readable.
func (w *WAL) SaveSnapshot(snap raftpb.Snapshot, hs raftpb.HardState, ents []raftpb.Entry) error {
	if w.err != nil {
		return w.err
	}
	body, err := snap.Marshal()
	if err != nil {
		return w.fail(err)
	}
	name := snapName(snap.Metadata.Index)
	if err := w.writeAtomic(name, appendFrame(nil, frameSnapshot, body)); err != nil {
		return err
	}
	w.snap = snap.Metadata.Index
	if isEmptyHardState(hs) {
		hs = w.hs
	}
	if err := w.rewrite(hs, ents); err != nil {
		return err
	}
	names, err := w.fs.List(w.dir)
	if err != nil {
		return nil // old snapshots stay; harmless
	}
	var snaps []string
	for _, n := range names {
		if strings.HasPrefix(n, "snap-") && strings.HasSuffix(n, ".snap") {
			snaps = append(snaps, n)
		}
	}
	slices.Sort(snaps)
	for i := 0; i+2 < len(snaps); i++ {
		_ = w.fs.Remove(path.Join(w.dir, snaps[i]))
	}
	return nil
}

// rewrite replaces the log with one holding hs and ents, and reopens it for appending.
func (w *WAL) rewrite(hs raftpb.HardState, ents []raftpb.Entry) error {
	var buf []byte
	for i := range ents {
		b, err := ents[i].Marshal()
		if err != nil {
			return w.fail(err)
		}
		buf = appendFrame(buf, frameEntry, b)
	}
	if !isEmptyHardState(hs) {
		b, err := hs.Marshal()
		if err != nil {
			return w.fail(err)
		}
		buf = appendFrame(buf, frameHardState, b)
	}
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
	if err := w.writeAtomic(walName, buf); err != nil {
		return err
	}
	w.hs = hs
	f, err := w.fs.OpenAppend(path.Join(w.dir, walName))
	if err != nil {
		return w.fail(err)
	}
	w.f = f
	return nil
}

func (w *WAL) writeAtomic(name string, data []byte) error {
	tmp := path.Join(w.dir, name+".tmp")
	f, err := w.fs.Create(tmp)
	if err != nil {
		return w.fail(err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.fs.Rename(tmp, path.Join(w.dir, name))
	}
	if err == nil {
		err = w.fs.SyncDir(w.dir)
	}
	if err != nil {
		return w.fail(fmt.Errorf("write %s: %w", name, err))
	}
	return nil
}

// Close closes the log file. The WAL is unusable afterwards.
func (w *WAL) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if w.err == nil {
		w.err = fmt.Errorf("ctrl: wal closed")
	}
	return err
}
