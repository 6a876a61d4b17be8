package node

import (
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/segstore"
)

// BenchmarkProduceRequest measures the whole produce path of a real broker
// over loopback: frame, decode, validate, append (group commit), answer.
// One op is one request of 6 partitions × one batch of 64 records of 1 KiB.
// The client side reuses one encoded request, so allocs/op are the broker's
// (plus the runtime's); the goal is no per-record allocation:
// allocs/op must not grow with records per batch.
func BenchmarkProduceRequest(b *testing.B) {
	for _, recs := range []int{16, 64} {
		b.Run(fmt.Sprintf("records=%d", recs), func(b *testing.B) {
			for _, policy := range []segstore.FlushPolicy{segstore.FlushAck, segstore.FlushOS} {
				b.Run("flush="+string(policy), func(b *testing.B) { benchProduce(b, recs, policy) })
			}
		})
	}
}

func benchProduce(b *testing.B, recs int, policy segstore.FlushPolicy) {
	n := startNode(b, "", func(c *Config) { c.Flush = policy })
	if _, err := n.reg.create("bench", 6, 1, nil, false); err != nil {
		b.Fatal(err)
	}
	vals := make([][]byte, recs)
	for i := range vals {
		vals[i] = make([]byte, 1024)
	}
	parts := map[int32][]byte{}
	for p := int32(0); p < 6; p++ {
		parts[p] = encodeBatch(1, vals...)
	}
	req := produceReq(9, -1, "bench", parts)
	body := req.AppendTo(nil)
	var f []byte
	f = kbin.AppendInt16(f, 0)
	f = kbin.AppendInt16(f, 9)
	f = kbin.AppendInt32(f, 0)
	f = kbin.AppendNullableString(f, ptr("bench"))
	f = append(f, 0)
	f = append(f, body...)
	frame := append(kbin.AppendInt32(nil, int32(len(f))), f...)
	c := dialRaw(b, n)
	resp := make([]byte, 64<<10)
	var hdr [4]byte
	b.SetBytes(int64(6 * recs * 1024))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint32(frame[8:], uint32(i))
		if _, err := c.c.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
			b.Fatal(err)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if _, err := io.ReadFull(c.c, resp[:size]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	pr := kmsg.NewPtrProduceResponse()
	pr.Version = 9
	if err := pr.ReadFrom(resp[5:]); err != nil {
		b.Fatal(err)
	}
	for _, p := range pr.Topics[0].Partitions {
		if p.ErrorCode != 0 || p.BaseOffset != int64((b.N-1)*recs) {
			b.Fatalf("last response: %+v", p)
		}
	}
}
