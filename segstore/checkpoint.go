package segstore

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// Checkpoint files use Kafka's text format so operators recognise them:
//
//	0            <- format version
//	2            <- number of entries
//	<fields...>  <- one entry a line, space separated
//
// They are replaced atomically (write, fsync, rename, fsync dir).

func writeCheckpoint(fs vfs.FS, path string, entries [][]string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		b.WriteString(strings.Join(e, " "))
		b.WriteByte('\n')
	}
	return vfs.WriteFileAtomic(fs, path, b.Bytes())
}

// readCheckpoint returns the entries, each split into exactly width fields. A
// missing file is no entries; a malformed one is an error naming the line.
func readCheckpoint(fs vfs.FS, path string, width int) ([][]string, error) {
	data, err := vfs.ReadFile(fs, path)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("%s: unknown checkpoint version %q", path, lines[0])
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n != len(lines)-2 {
		return nil, fmt.Errorf("%s: header says %q entries, file has %d", path, lines[1], len(lines)-2)
	}
	out := make([][]string, 0, n)
	for i, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) != width {
			return nil, fmt.Errorf("%s: line %d: want %d fields, got %q", path, i+3, width, l)
		}
		out = append(out, f)
	}
	return out, nil
}
