package segstore

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// TestCrashProperty appends at random across partitions from several
// goroutines, cuts the power at a random moment (dropping or tearing every
// unsynced byte), recovers, and checks the log against what was appended and
// acknowledged:
//   - every policy: each partition is a gapless run of batches from offset 0,
//     each byte-for-byte one that was appended at that offset (a clean prefix);
//   - policy=ack: every acknowledged batch is there, and no unacknowledged batch
//     sits before an acknowledged one.
func TestCrashProperty(t *testing.T) {
	seeds := 25
	if testing.Short() {
		seeds = 5
	}
	for _, policy := range []FlushPolicy{FlushAck, FlushInterval, FlushOS} {
		for seed := int64(0); seed < int64(seeds); seed++ {
			t.Run(fmt.Sprintf("%s/%d", policy, seed), func(t *testing.T) {
				crashOnce(t, policy, seed, false)
			})
		}
	}
	// Cold logs write direct (aligned blocks, padding): half the partitions
	// start cold and writers switch them between cold and hot at random.
	for seed := int64(0); seed < int64(seeds); seed++ {
		t.Run(fmt.Sprintf("cold/%d", seed), func(t *testing.T) {
			crashOnce(t, FlushAck, seed, true)
		})
	}
}

type appended struct {
	mu    sync.Mutex
	batch map[int64][]byte // by base offset, as stamped
	acked map[int64]bool
}

func crashOnce(t *testing.T, policy FlushPolicy, seed int64, cold bool) {
	rng := rand.New(rand.NewSource(seed))
	e := newEnv(t, func(c *Config) {
		c.Flush = policy
		c.FlushMessages = 7
	})
	const parts = 6
	logs := make([]*Log, parts)
	state := make([]*appended, parts)
	for p := range logs {
		logs[p] = e.log("crash", int32(p), LogConfig{SegmentBytes: 3 << 10, IndexIntervalBytes: 256})
		state[p] = &appended{batch: map[int64][]byte{}, acked: map[int64]bool{}}
		logs[p].SetColdWrites(cold && p%2 == 0)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(r *rand.Rand) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := r.Intn(parts)
				if cold && r.Intn(16) == 0 {
					logs[p].SetColdWrites(r.Intn(2) == 0)
				}
				b := makeBatch(1+r.Intn(4), r.Intn(300), time.Now().UnixMilli(), nil)
				s := state[p]
				s.mu.Lock() // hold across Append so the copy below is the stamped batch
				base, err := logs[p].Append(b, 1, func(res AppendResult) {
					if res.Err == nil {
						s.mu.Lock()
						s.acked[res.BaseOffset] = true
						s.mu.Unlock()
					}
				})
				if err == nil {
					s.batch[base] = append([]byte(nil), b...)
				}
				s.mu.Unlock()
				if err != nil {
					return // store closed under us
				}
			}
		}(rand.New(rand.NewSource(seed*100 + int64(w))))
	}
	time.Sleep(time.Duration(2+rng.Intn(15)) * time.Millisecond)

	// Snapshot what was acknowledged before the power cut, then cut it.
	acked := make([]map[int64]bool, parts)
	for p, s := range state {
		s.mu.Lock()
		acked[p] = map[int64]bool{}
		for o := range s.acked {
			acked[p][o] = true
		}
		s.mu.Unlock()
	}
	mode := vfs.CrashMode(rng.Intn(2))
	crashed := e.fs.CrashClone(mode, rng)
	close(stop)
	wg.Wait()
	e.st.Close()
	e.fs, e.st = crashed, nil
	e.open()

	total := 0
	for p := 0; p < parts; p++ {
		l := e.st.Log("crash", int32(p))
		got := readAll(t, l)
		s := state[p]
		next := int64(0)
		lastAckedIdx, firstUnackedIdx := -1, -1
		for i, b := range got {
			h := parseHeader(b)
			if h.BaseOffset != next {
				t.Fatalf("partition %d: batch %d at offset %d, want %d (gap)", p, i, h.BaseOffset, next)
			}
			if want := s.batch[h.BaseOffset]; !bytes.Equal(b, want) {
				t.Fatalf("partition %d: batch at %d is not the one appended (%d vs %d bytes)", p, h.BaseOffset, len(b), len(want))
			}
			if acked[p][h.BaseOffset] {
				lastAckedIdx = i
			} else if firstUnackedIdx < 0 {
				firstUnackedIdx = i
			}
			next = h.LastOffset() + 1
		}
		if policy == FlushAck {
			for o := range acked[p] {
				if o >= next {
					t.Fatalf("partition %d: acknowledged batch at %d lost (log ends at %d, mode %d)", p, o, next, mode)
				}
			}
			if firstUnackedIdx >= 0 && firstUnackedIdx < lastAckedIdx {
				t.Fatalf("partition %d: unacknowledged batch %d before acknowledged batch %d", p, firstUnackedIdx, lastAckedIdx)
			}
		}
		total += len(acked[p])
		// The recovered log takes appends where it ends.
		if r := appendSync(t, l, makeBatch(1, 10, 1, nil), 2); r.Err != nil || r.BaseOffset != next {
			t.Fatalf("partition %d: append after recovery: %+v, want base %d", p, r, next)
		}
	}
	if total == 0 && policy == FlushAck {
		t.Logf("seed %d: nothing acknowledged before the crash", seed)
	}
}
