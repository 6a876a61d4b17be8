package repl

import (
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/segstore"
)

// TestSimRandomized runs seeded random histories of appends (acks=all and
// acks=1), fetches, message deliveries and losses, clock steps, crashes,
// restarts and the elections they cause, on 3 replicas with
// min.insync.replicas=2 and policy=ack. After every step: every acks=all
// record is at its offset on the leader and every live ISR member, every
// replica agrees with the leader byte for byte below its HW, and no leader's
// HW went back (noteHW). At the end all replicas converge to one log.
// SLUICE_REPL_SIM_SEEDS=n runs more seeds (2000 pass), SLUICE_REPL_SIM_FROM=k
// starts at seed k, SLUICE_REPL_SIM_TRACE=1 logs every step.
func TestSimRandomized(t *testing.T) {
	seeds := 20
	if v, err := strconv.Atoi(os.Getenv("SLUICE_REPL_SIM_SEEDS")); err == nil {
		seeds = v
	}
	from := int64(1) // SLUICE_REPL_SIM_FROM=seed replays one failing history onwards
	if v, err := strconv.ParseInt(os.Getenv("SLUICE_REPL_SIM_FROM"), 10, 64); err == nil {
		from = v
	}
	for seed := from; seed < from+int64(seeds); seed++ {
		runRandomSim(t, seed, 200)
		if t.Failed() {
			return
		}
	}
}

func runRandomSim(t *testing.T, seed int64, steps int) {
	rng := rand.New(rand.NewSource(seed))
	s := newSim(t, 2, segstore.FlushAck, segstore.FlushAck, segstore.FlushAck)
	s.query = seed%2 == 0
	s.tracing = os.Getenv("SLUICE_REPL_SIM_TRACE") != ""
	var trace []string
	defer func() {
		if t.Failed() {
			t.Logf("seed %d, last steps: %v", seed, trace[max(0, len(trace)-30):])
		}
	}()
	down := func() []int32 {
		var ids []int32
		for _, n := range s.nodes {
			if !n.up {
				ids = append(ids, n.id)
			}
		}
		return ids
	}
	for i := 0; i < steps && !t.Failed(); i++ {
		id := int32(rng.Intn(3) + 1)
		switch p := rng.Intn(100); {
		case p < 20:
			trace = append(trace, "produce all")
			s.produce(-1)
		case p < 27:
			trace = append(trace, "produce 1")
			s.produce(1)
		case p < 52:
			trace = append(trace, "fetch "+strconv.Itoa(int(id)))
			s.fetch(id)
		case p < 82:
			if len(s.net) > 0 {
				trace = append(trace, "deliver")
				s.deliver(rng.Intn(len(s.net)), false)
			}
		case p < 84:
			if len(s.net) > 0 {
				trace = append(trace, "drop")
				s.deliver(rng.Intn(len(s.net)), true)
			}
		case p < 92:
			trace = append(trace, "tick")
			s.clock.Advance(time.Duration(1+rng.Intn(3)) * time.Second)
			for _, n := range s.nodes {
				if n.up && n.leader != nil {
					n.leader.Tick()
				}
			}
		case p < 94:
			if s.node(id).up && len(down()) < 2 {
				trace = append(trace, "crash "+strconv.Itoa(int(id)))
				s.crash(id)
			}
		default:
			if d := down(); len(d) > 0 {
				r := d[rng.Intn(len(d))]
				trace = append(trace, "restart "+strconv.Itoa(int(r)))
				s.restart(r)
			}
		}
		s.noteHW()
		s.check()
	}
	// Heal: everyone up, then fetch until quiet; all logs must be one.
	for _, id := range down() {
		s.restart(id)
	}
	settle := func() {
		for round := 0; round < 20; round++ {
			for _, n := range s.nodes {
				s.fetch(n.id)
			}
			s.drain()
			s.check()
		}
	}
	settle()
	// Once healed, an acks=all produce must succeed (liveness: the ISR grew
	// back) and land everywhere.
	before := len(s.acked)
	if _, err := s.produce(-1); err != nil {
		t.Fatalf("seed %d: acks=all produce after healing: %v", seed, err)
	}
	settle()
	if len(s.acked) != before+1 {
		t.Fatalf("seed %d: acks=all produce after healing was not acknowledged", seed)
	}
	for _, n := range s.nodes[1:] {
		s.wantIdentical(s.nodes[0].id, n.id)
	}
	t.Logf("seed %d: %d acks=all and %d acks=1 records acknowledged, %d elections, LEO %d",
		seed, len(s.acked), len(s.acks1), len(s.ctl.electionsAt), s.nodes[0].log.Offsets().End)
}
