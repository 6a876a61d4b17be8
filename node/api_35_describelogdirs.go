// DescribeLogDirs (key 35), versions 0-4.
//
// Answers the broker's one log directory (log.dirs, as an absolute path)
// with every partition in it, or only the requested ones (a null topic list
// means all; requested topics or partitions this broker does not have are
// left out, as in Kafka). Size is the bytes in the partition's segment
// files; OffsetLag is 0 (this broker is the leader) and IsFuture false (no
// replica moves between directories). v4 adds the file system's TotalBytes
// and UsableBytes (statfs; -1 when it fails, Kafka's UNKNOWN_VOLUME_BYTES).
// The directory is listed even when it holds no partitions. Runs off the
// event loop (statfs).
//
// Size counts segment (.log) bytes, not the index files, as Kafka's
// UnifiedLog.size does.
//
// Deviations: a log directory failure is not tracked apart from a
// partition's sticky storage error, so the directory's ErrorCode is always
// NONE (failed partitions still report their size); a topic requested
// twice is listed twice.
package node

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

func init() {
	registerAPI(&apiDef{key: 35, min: 0, max: 4, handle: handleDescribeLogDirs})
}

func handleDescribeLogDirs(n *Node, c *call) {
	req := c.kreq.(*kmsg.DescribeLogDirsRequest)
	c.async(func() { c.respond(n.describeLogDirs(req)) })
}

func (n *Node) describeLogDirs(req *kmsg.DescribeLogDirsRequest) *kmsg.DescribeLogDirsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = n.cfg.DataDir
	if abs, err := filepath.Abs(n.cfg.DataDir); err == nil {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var st unix.Statfs_t
	if err := unix.Statfs(dir.Dir, &st); err == nil {
		dir.TotalBytes = int64(st.Blocks) * st.Bsize
		dir.UsableBytes = int64(st.Bavail) * st.Bsize
	}

	addTopic := func(t *topic, want func(int32) bool) {
		out := kmsg.NewDescribeLogDirsResponseDirTopic()
		out.Topic = t.name
		for _, p := range n.reg.partitions(t) {
			l := p.getLog()
			if l == nil || !want(p.index) {
				continue
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = p.index, l.Size()
			out.Partitions = append(out.Partitions, rp)
		}
		if len(out.Partitions) > 0 {
			dir.Topics = append(dir.Topics, out)
		}
	}
	if req.Topics == nil {
		for _, t := range n.reg.list() {
			addTopic(t, func(int32) bool { return true })
		}
	} else {
		for _, rt := range req.Topics {
			t := n.reg.get(rt.Topic)
			if t == nil {
				continue
			}
			want := map[int32]bool{}
			for _, p := range rt.Partitions {
				want[p] = true
			}
			addTopic(t, func(p int32) bool { return want[p] })
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp
}
