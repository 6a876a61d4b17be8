package segstore

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// appendReplicaSync runs AppendReplica and waits for its completion.
func appendReplicaSync(t *testing.T, l *Log, b []byte) error {
	t.Helper()
	ch := make(chan AppendResult, 1)
	if _, err := l.AppendReplica(b, func(r AppendResult) { ch <- r }); err != nil {
		return err
	}
	return (<-ch).Err
}

func TestAppendReplicaKeepsOffsetsAndEpochs(t *testing.T) {
	le := newEnv(t, nil)
	leader := le.log("t", 0, LogConfig{SegmentBytes: 2 << 10, IndexIntervalBytes: 256})
	epochs := []int32{1, 1, 3, 3, 3, 7, 7, 7, 7, 7}
	for i, ep := range epochs {
		if r := appendSync(t, leader, makeBatch(1+i%3, 200, int64(1000+i), nil), ep); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	want := readAll(t, leader)

	fe := newEnv(t, nil)
	follower := fe.log("t", 0, LogConfig{SegmentBytes: 2 << 10, IndexIntervalBytes: 256})
	// Replicate in fetch-sized chunks of whole batches, as a fetcher would.
	for i := 0; i < len(want); i += 3 {
		var chunk []byte
		for _, b := range want[i:min(i+3, len(want))] {
			chunk = append(chunk, b...)
		}
		if err := appendReplicaSync(t, follower, append([]byte(nil), chunk...)); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	check := func(what string) {
		t.Helper()
		if got := readAll(t, follower); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: follower batches differ from the leader's", what)
		}
		if lo, fo := leader.Offsets(), follower.Offsets(); lo.End != fo.End {
			t.Fatalf("%s: LEO leader %d follower %d", what, lo.End, fo.End)
		}
		if lg, fg := leader.Epochs(), follower.Epochs(); !reflect.DeepEqual(lg, fg) {
			t.Fatalf("%s: epochs leader %v follower %v", what, lg, fg)
		}
	}
	check("live")
	fe.crash(vfs.DropUnsynced, nil) // policy=ack: everything was synced
	follower = fe.st.Log("t", 0)
	check("after crash")

	// A leader epoch answer from the follower matches the leader's.
	for ep := int32(0); ep <= 8; ep++ {
		le1, lo1 := leader.EndOffsetForEpoch(ep)
		fe1, fo1 := follower.EndOffsetForEpoch(ep)
		if le1 != fe1 || lo1 != fo1 {
			t.Fatalf("epoch %d: leader (%d,%d) follower (%d,%d)", ep, le1, lo1, fe1, fo1)
		}
	}
}

func TestAppendReplicaRejects(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("t", 0, LogConfig{})
	at := func(base int64, n int, epoch int32) []byte {
		b := makeBatch(n, 10, 1, nil)
		stampOffsets(b, base, epoch)
		return b
	}
	if err := appendReplicaSync(t, l, at(0, 2, 4)); err != nil {
		t.Fatal(err)
	}
	f := func(name string, buf []byte, want error) {
		t.Helper()
		before := l.Offsets()
		err := appendReplicaSync(t, l, buf)
		if !errors.Is(err, want) {
			t.Fatalf("%s: err %v, want %v", name, err, want)
		}
		if l.Offsets() != before {
			t.Fatalf("%s: offsets moved from %+v to %+v", name, before, l.Offsets())
		}
	}
	f("below log end", at(1, 1, 4), ErrUnexpectedOffset)
	f("overlapping batches", append(at(2, 2, 4), at(3, 1, 4)...), ErrUnexpectedOffset)
	bad := at(2, 1, 4)
	bad[len(bad)-1] ^= 0xff
	f("crc", bad, ErrCorruptBatch)
	f("truncated", at(2, 1, 4)[:40], ErrCorruptBatch)
	f("empty", nil, ErrInvalidRecord)

	// A gap (compaction on the leader) is accepted and kept.
	if err := appendReplicaSync(t, l, at(10, 1, 5)); err != nil {
		t.Fatal(err)
	}
	if o := l.Offsets(); o.End != 11 {
		t.Fatalf("end %d after a batch at 10", o.End)
	}
	if got, want := l.Epochs(), []EpochEntry{{4, 0}, {5, 10}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("epochs %v, want %v", got, want)
	}
	buf, err := l.ReadCopy(2, 1<<20, -1, nil)
	if err != nil || len(buf) == 0 || parseHeader(buf).BaseOffset != 10 {
		t.Fatalf("read at 2 after the gap: %d bytes, err %v", len(buf), err)
	}
	if !bytes.Equal(buf, at(10, 1, 5)) {
		t.Fatal("batch after the gap changed on the way")
	}
}
