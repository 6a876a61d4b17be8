package repl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/sluicemq/sluice/segstore"
	"github.com/twmb/franz-go/pkg/kbin"
)

// makeBatch encodes a one-record v2 batch with value v, as a producer would.
func makeBatch(v []byte) []byte {
	var r []byte
	r = append(r, 0)             // attributes
	r = kbin.AppendVarlong(r, 0) // timestamp delta
	r = kbin.AppendVarint(r, 0)  // offset delta
	r = kbin.AppendVarint(r, -1) // null key
	r = kbin.AppendVarintBytes(r, v)
	r = kbin.AppendVarint(r, 0) // headers
	recs := kbin.AppendVarint(nil, int32(len(r)))
	recs = append(recs, r...)
	b := make([]byte, 61, 61+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(61-12+len(recs)))
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint64(b[27:], 1_700_000_000_000)
	be.PutUint64(b[35:], 1_700_000_000_000)
	be.PutUint64(b[43:], ^uint64(0))
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[57:], 1)
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// produce appends one record at the leader with acks (1 or -1) and returns
// its offset, or an error if the leader refused it. An acks=all produce
// completes later (or never); its success is recorded in s.acked.
func (s *sim) produce(acks int16) (int64, error) {
	s.t.Helper()
	id := s.ctl.leader
	if id < 0 || !s.node(id).up || s.node(id).leader == nil {
		return -1, errors.New("no leader")
	}
	n := s.node(id)
	if err := n.leader.CheckAppend(acks); err != nil {
		return -1, err
	}
	s.seq++
	buf := makeBatch([]byte(fmt.Sprintf("m%d", s.seq)))
	ch := make(chan segstore.AppendResult, 1)
	if _, err := n.log.Append(buf, n.leader.Epoch(), func(r segstore.AppendResult) { ch <- r }); err != nil {
		return -1, err
	}
	r := <-ch
	if r.Err != nil {
		s.t.Fatalf("append at leader %d: %v", id, r.Err)
	}
	n.leader.OnAppended()
	rec := acked{offset: r.BaseOffset, batch: buf}
	s.tracef("produce m%d at %d on %d acks=%d", s.seq, r.BaseOffset, id, acks)
	if acks == 1 {
		s.acks1 = append(s.acks1, rec)
	} else {
		n.leader.WaitForAcks(r.LastOffset, 30*time.Second, func(err error) {
			if err == nil {
				s.acked = append(s.acked, rec)
			}
			s.tracef("acks=all at %d: %v", rec.offset, err)
		})
	}
	s.noteHW()
	return r.BaseOffset, nil
}
