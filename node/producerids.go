package node

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicemq/sluice/ioring/vfs"
)

const (
	// producerIDFile holds the first id of the next unreserved block.
	producerIDFile = "producer-id-block"
	// producerIDBlock is how many ids one disk write reserves (Kafka's
	// controller hands out blocks of 1000 too).
	producerIDBlock = 1000
)

// producerIDs hands out producer ids for InitProducerId. An id must never be
// handed out twice, or two producers would share sequence numbers and one's
// batches would be taken for the other's duplicates — not even across a
// crash. So ids come from blocks whose end is made durable before the
// first id of the block is handed out: after a restart the next block
// starts past everything that may have been used, at the cost of skipping
// the unused rest of the last block.
//
// Concurrency: all methods are safe for concurrent use. mu guards the
// counters and is never held across I/O, so take never waits for a disk;
// reserveMu serializes the block writes.
type producerIDs struct {
	fs   vfs.FS
	path string

	mu        sync.Mutex
	next, end int64 // ids [next, end) are reserved and not handed out yet

	reserveMu sync.Mutex
	// remote, in a cluster, reserves a block from the active controller
	// (the metadata log makes it unique cluster-wide) instead of the file.
	remote func(count int64) (first int64, err error)
	// allocated, in a cluster, is the end of every block handed out to
	// any broker (the metadata's next producer id).
	allocated func() int64
	// txnRefused makes the "transactions are not supported" line appear once.
	txnRefused atomic.Bool
}

// openProducerIDs reads <dir>/producer-id-block. A file that cannot be read
// or parsed stops the broker: which ids were handed out is then unknown.
func openProducerIDs(fs vfs.FS, dir string) (*producerIDs, error) {
	p := &producerIDs{fs: fs, path: filepath.Join(dir, producerIDFile)}
	data, err := vfs.ReadFile(fs, p.path)
	switch {
	case err == nil:
		v, perr := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if perr != nil || v < 0 {
			return nil, fmt.Errorf("node: %s holds %q, not the start of the next producer id block; "+
				"the ids handed out before are unknown, so no new one is safe (if the file was lost, "+
				"write a number larger than any producer id in use)", p.path, data)
		}
		p.next, p.end = v, v
	case !fs.Exists(p.path):
		// A new data directory: ids start at 0.
	default:
		return nil, fmt.Errorf("node: read %s: %w", p.path, err)
	}
	return p, nil
}

// take hands out the next id of the reserved block; false when the block is
// used up and reserve must run first (disk I/O). Safe on an event loop.
func (p *producerIDs) take() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		return -1, false
	}
	id := p.next
	p.next++
	return id, true
}

// takeOrReserve hands out an id, reserving a new block first if needed. It
// may write and fsync a file: never call it from an event loop.
func (p *producerIDs) takeOrReserve() (int64, error) {
	p.reserveMu.Lock()
	defer p.reserveMu.Unlock()
	if id, ok := p.take(); ok {
		return id, nil
	}
	if p.remote != nil {
		start, err := p.remote(producerIDBlock)
		if err != nil {
			return -1, fmt.Errorf("reserve producer ids: %w", err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.next, p.end = start+1, start+producerIDBlock
		return start, nil
	}
	p.mu.Lock()
	start := p.end
	p.mu.Unlock()
	if start > math.MaxInt64-producerIDBlock {
		return -1, errors.New("producer ids are exhausted")
	}
	end := start + producerIDBlock
	if err := vfs.WriteFileAtomic(p.fs, p.path, []byte(strconv.FormatInt(end, 10)+"\n")); err != nil {
		return -1, fmt.Errorf("reserve producer ids: write %s: %w", p.path, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next, p.end = start+1, end
	return start, nil
}

// issued reports whether id may have been handed out by this broker (in
// this life or an earlier one): it is below every id still to come. An id
// of the reserved block not handed out yet is not issued, or a client
// naming it could share it with the producer that gets it later. Safe for
// concurrent use.
func (p *producerIDs) issued(id int64) bool {
	if p.allocated != nil {
		return id >= 0 && id < p.allocated()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return id >= 0 && id < p.next
}
