package node

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaReq is one request as a fake broker reads it off the wire.
type kafkaReq struct {
	key, version int16
	corr         int32
	clientID     *string
	body         []byte
}

// readKafkaRequest reads one size-prefixed request and parses its header
// (v1, or v2 with a tag section for flexible versions).
func readKafkaRequest(c net.Conn) (kafkaReq, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return kafkaReq{}, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return kafkaReq{}, err
	}
	r := kbin.Reader{Src: buf}
	q := kafkaReq{key: r.Int16(), version: r.Int16(), corr: r.Int32(), clientID: r.NullableString()}
	if kr := kmsg.RequestForKey(q.key); kr != nil {
		kr.SetVersion(q.version)
		if kr.IsFlexible() {
			kmsg.SkipTags(&r)
		}
	}
	if err := r.Complete(); err != nil {
		return kafkaReq{}, err
	}
	q.body = r.Src
	return q, nil
}

// writeKafkaResponse writes a response frame: correlation id, the header's
// tag section when hdrTags is non-nil (flexible header), then body.
func writeKafkaResponse(c net.Conn, corr int32, hdrTags []byte, body []byte) error {
	f := kbin.AppendInt32(nil, corr)
	f = append(f, hdrTags...)
	f = append(f, body...)
	_, err := c.Write(append(kbin.AppendInt32(nil, int32(len(f))), f...))
	return err
}

// kconnServer runs serve on each connection accepted on a local port and
// returns the address.
func kconnServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dialTest(t *testing.T, addr string) *kconn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialKafka(ctx, addr, "kconn-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestKconnRoundTrip(t *testing.T) {
	seen := make(chan kafkaReq, 4)
	addr := kconnServer(t, func(c net.Conn) {
		for {
			q, err := readKafkaRequest(c)
			if err != nil {
				return
			}
			seen <- q
			switch q.key {
			case 3: // Metadata v12: flexible header with one unknown tag
				resp := kmsg.NewPtrMetadataResponse()
				resp.Version = q.version
				resp.ClusterID = kmsg.StringPtr("c-1")
				b := kmsg.NewMetadataResponseBroker()
				b.NodeID, b.Host, b.Port = 7, "h", 9092
				resp.Brokers = append(resp.Brokers, b)
				tags := []byte{1, 5, 3, 'x', 'y', 'z'} // one tag: key 5, 3 bytes
				writeKafkaResponse(c, q.corr, tags, resp.AppendTo(nil))
			case 18: // ApiVersions v3: flexible body, header without tags
				resp := kmsg.NewPtrApiVersionsResponse()
				resp.Version = q.version
				k := kmsg.NewApiVersionsResponseApiKey()
				k.ApiKey, k.MaxVersion = 1, 16
				resp.ApiKeys = append(resp.ApiKeys, k)
				writeKafkaResponse(c, q.corr, nil, resp.AppendTo(nil))
			}
		}
	})
	c := dialTest(t, addr)
	ctx := testCtx(t)

	mreq := kmsg.NewPtrMetadataRequest()
	mreq.SetVersion(12)
	resp, err := c.Request(ctx, mreq)
	if err != nil {
		t.Fatal(err)
	}
	mr := resp.(*kmsg.MetadataResponse)
	if mr.GetVersion() != 12 || mr.ClusterID == nil || *mr.ClusterID != "c-1" || len(mr.Brokers) != 1 || mr.Brokers[0].Port != 9092 {
		t.Fatalf("metadata response %+v", mr)
	}
	q := <-seen
	if q.key != 3 || q.version != 12 || q.clientID == nil || *q.clientID != "kconn-test" {
		t.Fatalf("server saw key %d v%d client %v", q.key, q.version, q.clientID)
	}
	if err := kmsg.NewPtrMetadataRequest().ReadFrom(q.body); err != nil {
		t.Fatalf("request body does not decode: %v", err)
	}

	areq := kmsg.NewPtrApiVersionsRequest()
	areq.SetVersion(3)
	resp, err = c.Request(ctx, areq)
	if err != nil {
		t.Fatal(err)
	}
	if ar := resp.(*kmsg.ApiVersionsResponse); len(ar.ApiKeys) != 1 || ar.ApiKeys[0].MaxVersion != 16 {
		t.Fatalf("api versions response %+v", ar)
	}
	if q2 := <-seen; q2.corr == q.corr {
		t.Fatalf("correlation id %d reused", q2.corr)
	}
}

func TestKconnBadResponses(t *testing.T) {
	f := func(name string, answer func(c net.Conn, q kafkaReq), wantErr string) {
		t.Helper()
		addr := kconnServer(t, func(c net.Conn) {
			for {
				q, err := readKafkaRequest(c)
				if err != nil {
					return
				}
				answer(c, q)
			}
		})
		c := dialTest(t, addr)
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		_, err := c.Request(testCtx(t), req)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s: error %v, want one containing %q", name, err, wantErr)
		}
		// Any error closes the connection for good.
		if _, err2 := c.Request(testCtx(t), req); err2 == nil {
			t.Fatalf("%s: request after an error succeeded", name)
		}
	}
	good := func(q kafkaReq) []byte {
		r := kmsg.NewPtrMetadataResponse()
		r.Version = q.version
		return r.AppendTo(nil)
	}
	f("correlation mismatch", func(c net.Conn, q kafkaReq) {
		writeKafkaResponse(c, q.corr+1, []byte{0}, good(q))
	}, "correlation id")
	f("oversized", func(c net.Conn, q kafkaReq) {
		c.Write(kbin.AppendInt32(kbin.AppendInt32(nil, kconnMaxResponse+1), q.corr))
	}, "response size")
	f("negative size", func(c net.Conn, q kafkaReq) {
		c.Write(kbin.AppendInt32(kbin.AppendInt32(nil, -5), q.corr))
	}, "response size")
	f("truncated header tags", func(c net.Conn, q kafkaReq) {
		writeKafkaResponse(c, q.corr, []byte{1, 5, 9}, nil) // a 9-byte tag with no bytes
	}, "header tags")
	f("undecodable body", func(c net.Conn, q kafkaReq) {
		writeKafkaResponse(c, q.corr, []byte{0}, []byte{0, 0})
	}, "decode response")
	f("connection closed", func(c net.Conn, q kafkaReq) { c.Close() }, "read response header")
}

func TestKconnContextAbortsParkedRequest(t *testing.T) {
	addr := kconnServer(t, func(c net.Conn) {
		readKafkaRequest(c)
		// Never answer; hang up after a while so that a Request ignoring
		// its ctx fails the test instead of hanging it.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
	})
	c := dialTest(t, addr)
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Request(ctx, req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if _, err := c.Request(context.Background(), req); err == nil {
		t.Fatal("request on a conn whose last request was cancelled succeeded")
	}

	c2 := dialTest(t, addr)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := c2.Request(ctx2, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
}
