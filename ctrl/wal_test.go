package ctrl

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func ents(lo, hi, term uint64) []raftpb.Entry {
	var out []raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, raftpb.Entry{Index: i, Term: term, Data: []byte{byte(i)}})
	}
	return out
}

func TestWALReopenTornTailAndConflicts(t *testing.T) {
	dir := t.TempDir()
	w, _, err := OpenWAL(OSFS{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Save(raftpb.HardState{Term: 1, Vote: 2, Commit: 3}, ents(1, 5, 1)))
	// A new leader overwrote 4..5 with term 2 entries: the reader must keep the later ones.
	must(w.Save(raftpb.HardState{Term: 2, Vote: 3, Commit: 4}, ents(4, 6, 2)))
	must(w.Close())
	// A crash mid-append leaves half a frame.
	p := filepath.Join(dir, walName)
	good, _ := os.ReadFile(p)
	torn := appendFrame(nil, frameEntry, []byte("0123456789"))
	must(os.WriteFile(p, append(slices.Clone(good), torn[:7]...), 0o644))

	w, rec, err := OpenWAL(OSFS{}, dir)
	must(err)
	if rec.Dropped == "" {
		t.Fatal("torn tail not reported")
	}
	if rec.HardState.Term != 2 || rec.HardState.Commit != 4 {
		t.Fatalf("hard state %+v", rec.HardState)
	}
	var got []uint64
	for _, e := range rec.Entries {
		got = append(got, e.Index*10+e.Term)
	}
	if want := []uint64{11, 21, 31, 42, 52, 62}; !slices.Equal(got, want) {
		t.Fatalf("entries (index*10+term) %v, want %v", got, want)
	}
	// The tail was cut off, so what is appended now is readable.
	must(w.Save(raftpb.HardState{Term: 2, Vote: 3, Commit: 6}, ents(7, 7, 2)))
	must(w.Close())
	_, rec, err = OpenWAL(OSFS{}, dir)
	must(err)
	if rec.Dropped != "" || len(rec.Entries) != 7 || rec.HardState.Commit != 6 {
		t.Fatalf("after append: dropped=%q entries=%d hs=%+v", rec.Dropped, len(rec.Entries), rec.HardState)
	}
}

func TestWALSnapshotCompactsLog(t *testing.T) {
	dir := t.TempDir()
	w, _, err := OpenWAL(OSFS{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 8}, ents(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []uint64{4, 6, 8} {
		snap := raftpb.Snapshot{Data: []byte("s"), Metadata: raftpb.SnapshotMetadata{Index: idx, Term: 1}}
		if err := w.SaveSnapshot(snap, raftpb.HardState{Term: 1, Commit: 8}, ents(idx+1, 10, 1)); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Close()
	names, _ := OSFS{}.List(dir)
	var snaps int
	for _, n := range names {
		if filepath.Ext(n) == ".snap" {
			snaps++
		}
	}
	if snaps != 2 {
		t.Fatalf("%d snapshot files kept, want 2: %v", snaps, names)
	}
	_, rec, err := OpenWAL(OSFS{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Snapshot.Metadata.Index != 8 || len(rec.Entries) != 2 || rec.Entries[0].Index != 9 {
		t.Fatalf("snapshot %d, entries %v", rec.Snapshot.Metadata.Index, rec.Entries)
	}
}

func FuzzWALReader(f *testing.F) {
	var seed []byte
	for _, e := range ents(1, 3, 1) {
		b, _ := e.Marshal()
		seed = appendFrame(seed, frameEntry, b)
	}
	hs, _ := (&raftpb.HardState{Term: 1, Commit: 2}).Marshal()
	seed = appendFrame(seed, frameHardState, hs)
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, walName), b, 0o644); err != nil {
			t.Fatal(err)
		}
		w, rec, err := OpenWAL(OSFS{}, dir)
		if err != nil {
			return // a clear error is fine; a panic is not
		}
		defer w.Close()
		for i := 1; i < len(rec.Entries); i++ {
			if rec.Entries[i].Index != rec.Entries[i-1].Index+1 {
				t.Fatalf("recovered entries not contiguous: %d after %d", rec.Entries[i].Index, rec.Entries[i-1].Index)
			}
		}
		frames, rest, _ := readFrames(b)
		if rest == 0 && rec.Dropped != "" || rest > 0 && rec.Dropped == "" {
			t.Fatalf("dropped %q but %d frames and %d bytes left", rec.Dropped, len(frames), rest)
		}
	})
}
