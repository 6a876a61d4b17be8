package repl

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sluicemq/sluice/segstore"
)

// step sends a request from follower id and delivers everything.
func (s *sim) step(id int32) {
	s.t.Helper()
	s.fetch(id)
	s.drain()
	s.check()
}

func (s *sim) wantRecord(id int32, off int64, value string) {
	s.t.Helper()
	b := s.batches(s.node(id))[off]
	if b == nil || !bytes.HasSuffix(b, append([]byte{byte(2 * len(value))}, append([]byte(value), 0)...)) {
		s.t.Fatalf("node %d offset %d: want %q, have %q", id, off, value, b)
	}
}

func (s *sim) wantIdentical(a, b int32) {
	s.t.Helper()
	na, nb := s.node(a), s.node(b)
	if oa, ob := na.log.Offsets().End, nb.log.Offsets().End; oa != ob {
		s.t.Fatalf("LEO node %d %d, node %d %d", a, oa, b, ob)
	}
	ba, bb := s.batches(na), s.batches(nb)
	for off, x := range ba {
		if !bytes.Equal(x, bb[off]) {
			s.t.Fatalf("nodes %d and %d differ at %d", a, b, off)
		}
	}
}

// KIP-101 scenario 1: the follower restarts after fetching m2 but before it
// learned the HW that covers m2; then the leader dies. A follower that cut
// its log to its HW on restart would lose m2, which was acknowledged.
func TestSimFollowerRestartKeepsRecordsAboveHW(t *testing.T) {
	s := newSim(t, 1, segstore.FlushAck, segstore.FlushAck)
	s.produce(-1) // m1 at 0
	s.step(2)
	s.produce(-1) // m2 at 1
	s.step(2)     // B fetches m2; learns HW 1
	s.fetch(2)    // B's fetch at 2 reaches A: HW 2, m2 acknowledged...
	s.deliver(0, false)
	if len(s.acked) != 2 {
		t.Fatalf("acked %d records, want 2", len(s.acked))
	}
	// ...and B restarts before the answer (the HW) reaches it.
	s.powerCut(2)
	s.drain()
	if hw := s.node(2).hwCkpt; hw != 1 {
		t.Fatalf("B's HW %d, want 1 (below its LEO 2): the scenario needs it", hw)
	}
	s.powerOn(2)
	if end := s.node(2).log.Offsets().End; end != 2 {
		t.Fatalf("B's LEO after restart %d, want 2: it must not truncate to its HW", end)
	}
	s.crash(1) // the leader dies; B is elected
	if s.ctl.leader != 2 {
		t.Fatalf("leader %d, want 2", s.ctl.leader)
	}
	s.wantRecord(2, 1, "m2")
	s.check()
	s.produce(-1)
	s.restart(1)
	for i := 0; i < 4; i++ {
		s.step(1)
	}
	s.wantIdentical(1, 2)
}

// KIP-101 scenario 2: leader A and follower B lose power together; B (page
// cache flushing) loses m2, comes back first and is elected, writes m3 at
// m2's offset. A returns with m2: it must cut exactly that and take m3.
func TestSimDivergentSuffixTruncatedOnReturn(t *testing.T) {
	for _, query := range []bool{false, true} {
		t.Run(fmt.Sprintf("epochQuery=%v", query), func(t *testing.T) {
			s := newSim(t, 1, segstore.FlushAck, segstore.FlushOS)
			s.query = query
			s.produce(-1) // m1 at 0
			s.step(2)
			s.step(2)
			if err := s.node(2).log.Flush(); err != nil { // a periodic flush on B covers m1
				t.Fatal(err)
			}
			s.produce(-1) // m2 at 1
			s.step(2)
			s.step(2)
			if len(s.acked) != 2 {
				t.Fatalf("acked %d, want 2", len(s.acked))
			}
			s.powerCut(1)
			s.powerCut(2)
			s.powerOn(2)
			if end := s.node(2).log.Offsets().End; end != 1 {
				t.Fatalf("B kept %d records, want 1 (m2 unsynced)", end)
			}
			// The acknowledged m2 is lost for good once B leads: every ISR
			// member lost power and B had not synced it. That is
			// log.flush.policy=os (Kafka's default) working as documented;
			// policy=ack keeps it. The invariant check stops expecting it.
			s.acked = s.acked[:1]
			s.ctl.fence(1) // A's session expires: B is elected
			s.pushMetadata()
			if s.ctl.leader != 2 {
				t.Fatalf("leader %d, want 2", s.ctl.leader)
			}
			if _, err := s.produce(1); err != nil { // m3 at 1
				t.Fatal(err)
			}
			s.wantRecord(2, 1, "m3")
			s.powerOn(1)
			s.ctl.unfence(1)
			s.pushMetadata()
			s.wantRecord(1, 1, "m2") // A came back with its divergent m2
			for i := 0; i < 5; i++ {
				s.step(1)
			}
			s.wantRecord(1, 1, "m3")
			s.wantIdentical(1, 2)
			s.check()
		})
	}
}

// acks=1: the leader acknowledges before any follower has the record; if it
// dies then, the record is lost. Expected, documented Kafka behaviour.
func TestSimAcksOneLossIsExpected(t *testing.T) {
	s := newSim(t, 1, segstore.FlushAck, segstore.FlushAck)
	s.produce(-1)
	s.step(2)
	s.step(2)
	if _, err := s.produce(1); err != nil { // m2 at 1, acknowledged at once
		t.Fatal(err)
	}
	s.crash(1)
	s.produce(1) // m3 at 1 on the new leader B
	s.restart(1)
	for i := 0; i < 4; i++ {
		s.step(1)
	}
	s.wantRecord(1, 1, "m3")
	s.wantRecord(2, 1, "m3")
	s.wantIdentical(1, 2)
	if len(s.acks1) != 2 || s.acks1[0].offset != 1 || s.acks1[1].offset != 1 {
		t.Fatalf("acks=1 records %+v: want m2 and m3 both acknowledged at 1", s.acks1)
	}
}
