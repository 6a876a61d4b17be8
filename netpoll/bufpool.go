package netpoll

import (
	"math/bits"
	"sync"
)

// Frame and copy buffers come from power-of-two size classes between 512 B and
// 16 MiB. Produce requests of several partitions with 1 MiB batches each are
// common (franz-go's default batch size), so 16 MiB frames are pooled: a
// fresh allocation per request cost zeroing, GC work and new pages. sync.Pool
// drops idle buffers after two GC cycles, so an idle broker pins nothing for
// long. Larger frames (up to socket.request.max.bytes) are allocated exactly.
const (
	minBufClass = 9
	maxBufClass = 24
)

var bufPools [maxBufClass - minBufClass + 1]sync.Pool

// getBuf returns a buffer of length n. Safe for concurrent use.
func getBuf(n int) *[]byte {
	if n > 1<<maxBufClass {
		b := make([]byte, n)
		return &b
	}
	c := max(bits.Len(uint(n-1)), minBufClass)
	if n == 0 {
		c = minBufClass
	}
	if v := bufPools[c-minBufClass].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// putBuf recycles a buffer from getBuf. Safe for concurrent use; the caller
// must not touch the buffer afterwards.
func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	if c < 1<<minBufClass || c > 1<<maxBufClass || c&(c-1) != 0 {
		return
	}
	bufPools[bits.Len(uint(c))-1-minBufClass].Put(b)
}
