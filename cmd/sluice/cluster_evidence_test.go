package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Evidence of a failed cluster test, kept by (*procCluster).cleanup.

// describeDirs lists every node's data directory: file sizes, and the
// contents of the small text files (checkpoints, partition.metadata), for
// the evidence of a failure.
func (c *procCluster) describeDirs() string {
	var sb strings.Builder
	for i, dir := range c.dirs {
		fmt.Fprintf(&sb, "=== node %d: %s\n", i+1, dir)
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(dir, path)
			fmt.Fprintf(&sb, "%10d %s\n", info.Size(), rel)
			if ext := filepath.Ext(path); info.Size() < 4096 && ext != ".log" && ext != ".index" && ext != ".timeindex" &&
				!strings.Contains(rel, "__cluster_metadata") {
				data, _ := os.ReadFile(path)
				sb.WriteString("           | " + strings.ReplaceAll(strings.TrimRight(string(data), "\n"), "\n", "\n           | ") + "\n")
			}
			return nil
		})
	}
	return sb.String()
}

// copyDirs copies the nodes' data directories to dst/node<i>-data, unless
// together they hold more than limit bytes.
func (c *procCluster) copyDirs(dst string, limit int64) {
	var total int64
	for _, dir := range c.dirs {
		filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					total += info.Size()
				}
			}
			return nil
		})
	}
	if total > limit {
		c.t.Logf("data directories (%d bytes) not kept: over %d bytes", total, limit)
		return
	}
	for i, dir := range c.dirs {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(dir, path)
			to := filepath.Join(dst, fmt.Sprintf("node%d-data", i+1), rel)
			if d.IsDir() {
				return os.MkdirAll(to, 0o755)
			}
			if data, err := os.ReadFile(path); err == nil {
				os.WriteFile(to, data, 0o644)
			}
			return nil
		})
	}
}
