package netpoll

import (
	"bufio"
	"encoding/binary"
	"io"
	"testing"
)

// benchRoundTrip measures framing + dispatch + response over loopback: one
// client connection keeps window requests of bodySize bytes in flight.
// Allocations include the client side, which is kept allocation-free.
func benchRoundTrip(b *testing.B, h Handler, window, bodySize int) {
	s, _ := startServer(b, h, Config{Loops: 1})
	conn := dial(b, s)
	frame := appendFrame(nil, 0, 3, 0, "bench-client", false, make([]byte, bodySize))
	batch := make([]byte, 0, len(frame)*window)
	for i := 0; i < window; i++ {
		batch = append(batch, frame...)
	}
	respLen := 4 + 4 + bodySize
	tokens := make(chan struct{}, 2)
	tokens <- struct{}{}
	tokens <- struct{}{}
	errc := make(chan error, 1)
	rounds := (b.N + window - 1) / window
	b.SetBytes(int64(len(frame) + respLen))
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < rounds; i++ {
			<-tokens // at most two batches in flight
			if _, err := conn.Write(batch); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	r := bufio.NewReaderSize(conn, 256<<10)
	resp := make([]byte, respLen)
	for i := 0; i < rounds; i++ {
		for j := 0; j < window; j++ {
			if _, err := io.ReadFull(r, resp); err != nil {
				b.Fatal(err)
			}
			if binary.BigEndian.Uint32(resp) != uint32(respLen-4) {
				b.Fatal("bad response size")
			}
		}
		tokens <- struct{}{}
	}
	b.StopTimer()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRoundTripPipelined(b *testing.B) { benchRoundTrip(b, echo, 64, 100) }

func BenchmarkRoundTripSerial(b *testing.B) { benchRoundTrip(b, echo, 1, 100) }

// Answers from another goroutine: exercises the Wake path.
func BenchmarkRoundTripAsyncAnswer(b *testing.B) {
	h := HandlerFunc(func(r *Request) { go r.Respond(Bytes(r.Body)) })
	benchRoundTrip(b, h, 64, 100)
}

func BenchmarkRoundTrip16KiB(b *testing.B) { benchRoundTrip(b, echo, 16, 16<<10) }

func BenchmarkParseHeader(b *testing.B) {
	frame := appendFrame(nil, 3, 9, 1, "client-id", true, make([]byte, 64))[4:]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseHeader(frame); err != nil {
			b.Fatal(err)
		}
	}
}
