package node

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

// segmentFiles counts a partition's .log files.
func segmentFiles(t *testing.T, n *Node, topic string, p int32) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(n.cfg.DataDir, topic+"-"+strconv.Itoa(int(p)), "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	createTopic(t, n, "dr", 1, map[string]*string{"segment.bytes": ptr("1024")})
	cl := newClient(t, n)
	adm := newAdmin(t, n)
	ctx := testCtx(t)
	base := time.Now().Add(-time.Hour).UnixMilli()
	for i := int64(0); i < 50; i++ {
		r := &kgo.Record{Topic: "dr", Value: make([]byte, 100), Timestamp: time.UnixMilli(base + i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	segsBefore := segmentFiles(t, n, "dr", 0)
	if segsBefore < 3 {
		t.Fatalf("want several segments, have %d", segsBefore)
	}

	del := func(p int32, at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "dr", Partition: p, At: at})
		rs, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		return rs["dr"][p]
	}
	if r := del(0, 30); r.Err != nil || r.LowWatermark != 30 {
		t.Fatalf("delete to 30: %+v", r)
	}
	start := func() int64 {
		t.Helper()
		lo, err := adm.ListStartOffsets(ctx, "dr")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("dr", 0)
		return o.Offset
	}
	if s := start(); s != 30 {
		t.Fatalf("start offset %d, want 30", s)
	}
	if segs := segmentFiles(t, n, "dr", 0); segs >= segsBefore {
		t.Errorf("segments %d -> %d: nothing deleted from disk", segsBefore, segs)
	}
	l := n.reg.partition("dr", 0).getLog()
	if _, err := l.Read(10, 1<<20, -1); !errors.Is(err, segstore.ErrOffsetOutOfRange) {
		t.Errorf("read below the new start: %v", err)
	}
	// A lookup by the timestamp of a deleted record answers the start.
	lo, err := adm.ListOffsetsAfterMilli(ctx, base+5, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("dr", 0); o.Offset != 30 || o.Timestamp != base+30 {
		t.Errorf("by timestamp after delete: %+v", o)
	}

	if r := del(0, 5); r.Err != nil || r.LowWatermark != 30 {
		t.Errorf("delete below the start: %+v", r)
	}
	if r := del(0, 51); r.Err != kerr.OffsetOutOfRange {
		t.Errorf("delete past the high watermark: %+v", r)
	}
	if r := del(0, -2); r.Err != kerr.OffsetOutOfRange {
		t.Errorf("delete to -2: %+v", r)
	}
	// Unknown partitions never leave kgo (it shards by metadata): ask raw.
	dreq := kmsg.NewPtrDeleteRecordsRequest()
	for _, name := range []string{"dr", "missing"} {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = name
		rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 3, Offset: 1}}
		dreq.Topics = append(dreq.Topics, rt)
	}
	dresp := dialRaw(t, n).request(dreq, 1).(*kmsg.DeleteRecordsResponse)
	for _, rt := range dresp.Topics {
		if c := rt.Partitions[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("%s-3: %v", rt.Topic, kerr.ErrorForCode(c))
		}
	}
	if r := del(0, -1); r.Err != nil || r.LowWatermark != 50 {
		t.Errorf("delete to the high watermark: %+v", r)
	}

	// The new start survives a restart.
	cl.Close()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, dir, nil)
	adm = newAdmin(t, n)
	if s := start(); s != 50 {
		t.Errorf("start after restart %d, want 50", s)
	}
}

func TestDescribeLogDirs(t *testing.T) {
	n := startNode(t, "", nil)
	createTopic(t, n, "ld", 2, nil)
	createTopic(t, n, "ld2", 1, nil)
	adm := newAdmin(t, n)
	ctx := testCtx(t)
	abs, _ := filepath.Abs(n.cfg.DataDir)
	size := func(s kadm.TopicsSet) (kadm.DescribedLogDir, int64) {
		t.Helper()
		all, err := adm.DescribeAllLogDirs(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := all[n.cfg.NodeID][abs]
		if !ok || d.Err != nil {
			t.Fatalf("log dir %s not described: %+v", abs, all)
		}
		p, _ := d.Topics.Lookup("ld", 0)
		return d, p.Size
	}
	d, before := size(nil)
	if len(d.Topics["ld"]) != 2 || len(d.Topics["ld2"]) != 1 {
		t.Errorf("partitions described: %+v", d.Topics)
	}
	cl := newClient(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ld", Value: make([]byte, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	d, after := size(nil)
	if after < before+5000 {
		t.Errorf("size %d -> %d after producing 5 kB", before, after)
	}
	if p, _ := d.Topics.Lookup("ld", 0); p.Size != n.reg.partition("ld", 0).getLog().Size() {
		t.Errorf("size %d, log says %d", p.Size, n.reg.partition("ld", 0).getLog().Size())
	}
	d, _ = size(kadm.TopicsSet{"ld": {0: {}}})
	if len(d.Topics) != 1 || len(d.Topics["ld"]) != 1 {
		t.Errorf("filtered describe: %+v", d.Topics)
	}
	lreq := kmsg.NewPtrDescribeLogDirsRequest()
	lreq.Version = 1
	lreq.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: "missing", Partitions: []int32{0}}, {Topic: "ld2", Partitions: []int32{0, 9}}}
	lresp := dialRaw(t, n).request(lreq, 1).(*kmsg.DescribeLogDirsResponse)
	if len(lresp.Dirs) != 1 || len(lresp.Dirs[0].Topics) != 1 || lresp.Dirs[0].Topics[0].Topic != "ld2" ||
		len(lresp.Dirs[0].Topics[0].Partitions) != 1 {
		t.Errorf("unknown topics and partitions are left out: %+v", lresp.Dirs)
	}
	// v4 reports the file system's space.
	vreq := kmsg.NewPtrDescribeLogDirsRequest()
	vreq.Version = 4
	resp := dialRaw(t, n).request(vreq, 1).(*kmsg.DescribeLogDirsResponse)
	if len(resp.Dirs) != 1 || resp.Dirs[0].TotalBytes <= 0 || resp.Dirs[0].UsableBytes < 0 ||
		resp.Dirs[0].UsableBytes > resp.Dirs[0].TotalBytes {
		t.Errorf("volume bytes: %+v", resp.Dirs)
	}
}

func TestCreatePartitions(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	createTopic(t, n, "cp", 1, nil)
	adm := newAdmin(t, n)
	ctx := testCtx(t)

	if rs, err := adm.ValidateCreatePartitions(ctx, 2, "cp"); err != nil || rs["cp"].Err != nil {
		t.Fatalf("validate: %v %+v", err, rs)
	}
	if got := len(n.reg.partitions(n.reg.get("cp"))); got != 1 {
		t.Fatalf("validate-only created partitions: %d", got)
	}
	if rs, err := adm.CreatePartitions(ctx, 2, "cp"); err != nil || rs["cp"].Err != nil {
		t.Fatalf("create: %v %+v", err, rs)
	}
	cl := newClient(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	r := &kgo.Record{Topic: "cp", Partition: 2, Value: []byte("x")}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil || r.Partition != 2 || r.Offset != 0 {
		t.Fatalf("produce to the new partition: %v %+v", err, r)
	}
	ends, err := adm.ListEndOffsets(ctx, "cp")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := ends.Lookup("cp", 2); !ok || o.Offset != 1 {
		t.Errorf("end of the new partition: %+v", o)
	}

	if rs, _ := adm.UpdatePartitions(ctx, 2, "cp"); rs["cp"].Err != kerr.InvalidPartitions {
		t.Errorf("shrink: %+v", rs)
	}
	if rs, _ := adm.UpdatePartitions(ctx, 3, "cp"); rs["cp"].Err != kerr.InvalidPartitions {
		t.Errorf("same count: %+v", rs)
	}
	if rs, _ := adm.UpdatePartitions(ctx, 5, "missing"); rs["missing"].Err != kerr.UnknownTopicOrPartition {
		t.Errorf("unknown topic: %+v", rs)
	}

	raw := func(validate bool, topics ...kmsg.CreatePartitionsRequestTopic) []kmsg.CreatePartitionsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Topics, req.ValidateOnly, req.TimeoutMillis = topics, validate, 5000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics
	}
	topic := func(name string, count int32, replicas ...[]int32) kmsg.CreatePartitionsRequestTopic {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, count
		for _, r := range replicas {
			rt.Assignment = append(rt.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: r})
		}
		return rt
	}
	me := n.cfg.NodeID
	for _, c := range []struct {
		name string
		rt   kmsg.CreatePartitionsRequestTopic
	}{
		{"another broker", topic("cp", 4, []int32{me + 1})},
		{"two replicas", topic("cp", 4, []int32{me, me + 1})},
		{"too few assignments", topic("cp", 5, []int32{me})},
	} {
		if got := raw(false, c.rt); got[0].ErrorCode != kerr.InvalidReplicaAssignment.Code || got[0].ErrorMessage == nil {
			t.Errorf("%s: %v", c.name, kerr.ErrorForCode(got[0].ErrorCode))
		}
	}
	got := raw(false, topic("cp", 4, []int32{me}), topic("dup", 2), topic("dup", 3))
	if got[0].ErrorCode != 0 || got[1].ErrorCode != kerr.InvalidRequest.Code || got[2].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("assignment / duplicates: %+v", got)
	}

	// The count survives a restart.
	cl.Close()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, dir, nil)
	if got := len(n.reg.partitions(n.reg.get("cp"))); got != 4 {
		t.Errorf("after restart %d partitions, want 4", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "cp-3")); err != nil {
		t.Errorf("log of partition 3: %v", err)
	}
}

func TestDescribeCluster(t *testing.T) {
	n := startNode(t, "", func(c *Config) { c.Rack = "r1" })
	cl := newClient(t, n)
	ctx := testCtx(t)
	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || resp.ClusterID != n.ClusterID() || resp.ControllerID != n.cfg.NodeID ||
		len(resp.Brokers) != 1 || resp.ClusterAuthorizedOperations != -2147483648 {
		t.Fatalf("describe cluster: %+v", resp)
	}
	b := resp.Brokers[0]
	if b.NodeID != n.cfg.NodeID || n.Advertised() != net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) || b.Rack == nil || *b.Rack != "r1" {
		t.Errorf("broker: %+v", b)
	}
	req.IncludeClusterAuthorizedOperations = true
	if resp, err = req.RequestWith(ctx, cl); err != nil || resp.ClusterAuthorizedOperations <= 0 ||
		resp.ClusterAuthorizedOperations&(1<<kmsg.ACLOperationDescribe) == 0 {
		t.Errorf("authorized operations: %v %+v", err, resp)
	}
	req.IncludeClusterAuthorizedOperations = false
	req.EndpointType = 2
	if resp, err = req.RequestWith(ctx, cl); err != nil || resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Errorf("controllers endpoint: %v %+v", err, resp)
	}

	// kadm's cluster view (Metadata) agrees.
	m, err := newAdmin(t, n).BrokerMetadata(ctx)
	if err != nil || m.Cluster != n.ClusterID() || len(m.Brokers) != 1 {
		t.Errorf("broker metadata: %v %+v", err, m)
	}
}
