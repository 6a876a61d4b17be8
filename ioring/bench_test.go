package ioring

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEngine measures group commit: each iteration is one Do with, per
// file, a 16 KiB write and a linked fdatasync. Files live under b.TempDir(),
// so the numbers are those of the disk under the test's temp directory. Each
// file's writes cycle through its first 1 MiB, so after the first 64
// iterations fdatasync flushes data without growing the file.
func BenchmarkEngine(b *testing.B) {
	engines := []struct {
		name string
		open func() (Engine, error)
	}{
		{"uring", func() (Engine, error) { return NewUring(256) }},
		{"sync", func() (Engine, error) { return NewSync(8), nil }},
	}
	for _, eng := range engines {
		for _, files := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/files=%d", eng.name, files), func(b *testing.B) {
				e, err := eng.open()
				if err != nil {
					b.Skipf("%s unavailable: %v", eng.name, err)
				}
				defer e.Close()
				const size = 16 << 10
				dir, buf := b.TempDir(), make([]byte, size)
				ops := make([]Op, 0, 2*files)
				for i := range files {
					f := create(b, dir, fmt.Sprintf("f%02d", i))
					ops = append(ops, Op{Kind: OpWrite, File: f, Bufs: [][]byte{buf}, Link: true},
						Op{Kind: OpSync, File: f})
				}
				b.SetBytes(int64(size * files))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for i := 0; b.Loop(); i++ {
					for j := 0; j < len(ops); j += 2 {
						ops[j].Off = int64(i%64) * size
					}
					e.Do(ops)
					if err := firstErr(ops); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*files), "ns/fsync")
			})
		}
	}
}

func firstErr(ops []Op) error {
	for i := range ops {
		if ops[i].Err != nil {
			return ops[i].Err
		}
	}
	return nil
}
