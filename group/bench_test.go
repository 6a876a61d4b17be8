package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// nopLog completes every append at once without keeping anything: the
// benchmarks measure the coordinator, not a log.
type nopLog struct{}

func (nopLog) Append(_ int32, _ []Record, done func(error)) { done(nil) }

// BenchmarkOffsetCommit is OffsetCommit throughput through Handle for a
// member of a Stable group, with a log that is durable immediately.
func BenchmarkOffsetCommit(b *testing.B) {
	for _, parts := range []int{1, 16} {
		b.Run("partitions="+itoa(int32(parts)), func(b *testing.B) {
			h := newHarness(b)
			ids, gen := h.stableGroup("g", 1)
			h.c.log = nopLog{}
			offsets := map[string]int64{}
			for i := 0; i < parts; i++ {
				offsets["t"+itoa(int32(1+i%3))+"/"+itoa(int32(i/3%4))] = 1
			}
			req := commitReq("g", ids[0], gen, offsets)
			var answered int
			respond := func(r kmsg.Response) { answered++ }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.c.Handle(req, respond)
			}
			b.StopTimer()
			if answered != b.N {
				b.Fatalf("%d answers for %d commits", answered, b.N)
			}
			b.ReportMetric(float64(b.N*parts)/b.Elapsed().Seconds(), "offsets/s")
		})
	}
}

// BenchmarkRebalance100 is one complete rebalance of a 100-member group:
// the leader rejoins, the 99 others follow, the leader syncs 100
// assignments and every member gets its own.
func BenchmarkRebalance100(b *testing.B) {
	const n = 100
	h := newHarness(b)
	ids, gen := h.stableGroup("g", n)
	h.c.log = nopLog{}
	joins := make([]*kmsg.JoinGroupRequest, n)
	for i, id := range ids {
		joins[i] = joinReq("g", id)
	}
	assign := map[string][]byte{}
	for _, id := range ids {
		assign[id] = make([]byte, 64)
	}
	var joined, synced int
	onJoin := func(r kmsg.Response) {
		if r.(*kmsg.JoinGroupResponse).ErrorCode == 0 {
			joined++
		}
	}
	onSync := func(r kmsg.Response) {
		if r.(*kmsg.SyncGroupResponse).ErrorCode == 0 {
			synced++
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		joined, synced = 0, 0
		for _, j := range joins {
			h.c.Handle(j, onJoin)
		}
		gen++
		for k := n - 1; k >= 0; k-- {
			var a map[string][]byte
			if k == 0 {
				a = assign
			}
			h.c.Handle(syncReq("g", ids[k], gen, a), onSync)
		}
		if joined != n || synced != n {
			b.Fatalf("joined %d synced %d", joined, synced)
		}
	}
}
