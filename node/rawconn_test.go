package node

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn is a hand-driven Kafka connection for bad-input tests.
type rawConn struct {
	t testing.TB
	c net.Conn
}

func dialRaw(t testing.TB, n *Node) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

// send writes a request frame with a v1 (or v2 for flexible versions)
// header around body.
func (r *rawConn) send(key, version int16, corr int32, body []byte) {
	r.t.Helper()
	kr := kmsg.RequestForKey(key)
	flexible := false
	if kr != nil {
		kr.SetVersion(version)
		flexible = kr.IsFlexible()
	}
	var f []byte
	f = kbin.AppendInt16(f, key)
	f = kbin.AppendInt16(f, version)
	f = kbin.AppendInt32(f, corr)
	f = kbin.AppendNullableString(f, ptr("raw-test"))
	if flexible {
		f = append(f, 0)
	}
	f = append(f, body...)
	r.write(append(kbin.AppendInt32(nil, int32(len(f))), f...))
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// request sends a kmsg request and decodes its response.
func (r *rawConn) request(req kmsg.Request, corr int32) kmsg.Response {
	r.t.Helper()
	r.send(req.Key(), req.GetVersion(), corr, req.AppendTo(nil))
	body := r.readFrame(corr)
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // empty response-header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode %T: %v", resp, err)
	}
	return resp
}

// readFrame reads one response and checks its correlation id; it returns
// the bytes after the id.
func (r *rawConn) readFrame(corr int32) []byte {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [8]byte
	if _, err := io.ReadFull(r.c, hdr[:]); err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	size := int32(binary.BigEndian.Uint32(hdr[:4]))
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		r.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(r.c, body); err != nil {
		r.t.Fatalf("read response body: %v", err)
	}
	return body
}

// expectClosed asserts the broker closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	for {
		_, err := r.c.Read(b[:])
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			r.t.Fatal("connection still open")
		}
		return
	}
}

// encodeBatch builds an uncompressed v2 RecordBatch of values as a producer
// would (baseOffset 0, no producer id).
func encodeBatch(ts int64, values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		var rec []byte
		rec = append(rec, 0)
		rec = kbin.AppendVarlong(rec, int64(i))
		rec = kbin.AppendVarint(rec, int32(i))
		rec = kbin.AppendVarint(rec, -1)
		rec = kbin.AppendVarintBytes(rec, v)
		rec = kbin.AppendVarint(rec, 0)
		recs = kbin.AppendVarint(recs, int32(len(rec)))
		recs = append(recs, rec...)
	}
	n := len(values)
	b := make([]byte, 61, 61+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(49+len(recs)))
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint32(b[23:], uint32(n-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts+int64(n-1)))
	be.PutUint64(b[43:], ^uint64(0))
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[57:], uint32(n))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func produceReq(version int16, acks int16, topic string, parts map[int32][]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = version, acks
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < int32(len(parts)); p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, parts[p]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}
