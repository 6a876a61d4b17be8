package segstore

import (
	"maps"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/ioring/vfs"
)

func TestOffsetCheckpointRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	const path = "/d/replication-offset-checkpoint"
	if err := fs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	if m, err := ReadOffsetCheckpoint(fs, path); err != nil || len(m) != 0 {
		t.Fatalf("missing file: %v, %v; want empty, nil", m, err)
	}
	want := map[TopicPartition]int64{{"b", 1}: 7, {"a", 10}: 0, {"a", 2}: 1 << 40, {"a.b_c-d", 0}: 3}
	if err := WriteOffsetCheckpoint(fs, path, want); err != nil {
		t.Fatal(err)
	}
	data, err := vfs.ReadFile(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	// Kafka's layout, sorted, so operators and tools recognise it.
	if got := string(data); got != "0\n4\na 2 1099511627776\na 10 0\na.b_c-d 0 3\nb 1 7\n" {
		t.Fatalf("file:\n%s", got)
	}
	// What was written survives a power cut: it was synced before the rename.
	got, err := ReadOffsetCheckpoint(fs.CrashClone(vfs.DropUnsynced, nil), path)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("read back %v, %v; want %v", got, err, want)
	}
	if err := WriteOffsetCheckpoint(fs, path, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadOffsetCheckpoint(fs, path); err != nil || len(got) != 0 {
		t.Fatalf("after writing none: %v, %v", got, err)
	}
}

func TestOffsetCheckpointRejectsMalformed(t *testing.T) {
	f := func(content, wantErr string) {
		t.Helper()
		fs := vfs.NewMem()
		if err := vfs.WriteFileAtomic(fs, "/ck", []byte(content)); err != nil {
			t.Fatal(err)
		}
		m, err := ReadOffsetCheckpoint(fs, "/ck")
		if err == nil || m != nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "/ck") {
			t.Fatalf("%q: got %v, %v; want an error naming the file and %q", content, m, err, wantErr)
		}
	}
	f("", "version")
	f("1\n0\n", "version")
	f("0\n", "version")
	f("0\n2\na 0 1\n", "entries")
	f("0\nx\n", "entries")
	f("0\n1\na 0\n", "fields")
	f("0\n1\na 0 1 2\n", "fields")
	f("0\n1\na x 1\n", "bad entry")
	f("0\n1\na 0 -1\n", "bad entry")
	f("0\n1\na 0 1x\n", "bad entry")
	f("0\n1\na -1 5\n", "partition -1")
	f("0\n1\na 99999999999 5\n", "bad entry")
}

// FuzzReadOffsetCheckpoint: any file content either reads as entries that
// write back and read again unchanged, or is an error; never a panic.
func FuzzReadOffsetCheckpoint(f *testing.F) {
	f.Add([]byte("0\n2\na 0 5\nb 3 0\n"))
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n1\n  a\t0  5  \n"))
	f.Add([]byte("0\n2\na 0 5\na 0 6\n"))
	f.Add([]byte("1\n1\na 0 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		if err := vfs.WriteFileAtomic(fs, "/ck", data); err != nil {
			t.Fatal(err)
		}
		m, err := ReadOffsetCheckpoint(fs, "/ck")
		if err != nil {
			if m != nil {
				t.Fatalf("error %v with entries %v", err, m)
			}
			return
		}
		for k, v := range m {
			if k.Partition < 0 || v < 0 || k.Topic == "" || strings.ContainsAny(k.Topic, " \n") {
				t.Fatalf("accepted bad entry %+v=%d from %q", k, v, data)
			}
		}
		if err := WriteOffsetCheckpoint(fs, "/ck2", m); err != nil {
			t.Fatal(err)
		}
		again, err := ReadOffsetCheckpoint(fs, "/ck2")
		if err != nil || !maps.Equal(again, m) {
			t.Fatalf("round trip of %q: %v, %v; want %v", data, again, err, m)
		}
	})
}
