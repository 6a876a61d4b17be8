package perf

import (
	"context"
	"testing"
	"time"
)

func TestScheduleIntendedTimes(t *testing.T) {
	// A start in the past makes every slot late: wait must hand them out
	// at once, each keeping its own intended time (open loop), not now.
	start := time.Now().Add(-time.Hour)
	s := newSchedule(start, 1000, 5, 0)
	for i := range 5 {
		due, ok := s.wait(context.Background(), 1)
		if !ok {
			t.Fatalf("slot %d refused", i)
		}
		if want := start.Add(time.Duration(i) * time.Millisecond); !due.Equal(want) {
			t.Fatalf("slot %d due %v, want %v", i, due.Sub(start), want.Sub(start))
		}
	}
	if _, ok := s.wait(context.Background(), 1); ok {
		t.Fatal("sixth slot of a 5-record schedule granted")
	}
	if got := s.expected(); got != 5 {
		t.Fatalf("expected() = %d, want 5", got)
	}
}

func TestSchedulePacesAndStops(t *testing.T) {
	start := time.Now()
	s := newSchedule(start, 200, 0, 100*time.Millisecond) // 5 ms apart, 100 ms
	n := 0
	for {
		due, ok := s.wait(context.Background(), 1)
		if !ok {
			break
		}
		if now := time.Now(); now.Before(due) {
			t.Fatalf("slot %d released %v before it was due", n, due.Sub(now))
		}
		n++
	}
	if n != 20 {
		t.Fatalf("%d slots in 100 ms at 200/s, want 20", n)
	}
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Fatalf("20 paced slots took %v, want about 95 ms", el)
	}
}

func TestScheduleBatchSlotsAndCancel(t *testing.T) {
	// Raw mode: a slot is a 100-record request; 250 records need 3 slots,
	// spaced 100 records / 1000 per s = 100 ms apart.
	start := time.Now().Add(-time.Hour)
	s := newSchedule(start, 1000, 250, 0)
	var dues []time.Duration
	for {
		due, ok := s.wait(context.Background(), 100)
		if !ok {
			break
		}
		dues = append(dues, due.Sub(start))
	}
	if len(dues) != 3 || dues[2] != 200*time.Millisecond {
		t.Fatalf("dues %v, want [0 100ms 200ms]", dues)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := newSchedule(time.Now(), 0, 0, time.Hour).wait(ctx, 1); ok {
		t.Fatal("max-throughput slot granted after cancel")
	}
	if _, ok := newSchedule(time.Now().Add(time.Hour), 1, 0, 0).wait(ctx, 1); ok {
		t.Fatal("future slot granted after cancel")
	}
}
