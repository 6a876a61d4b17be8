package perf

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestParseSizeDist(t *testing.T) {
	f := func(spec string, lo, hi int, mean float64) {
		t.Helper()
		d, err := parseSizeDist(spec)
		if err != nil {
			t.Fatalf("parseSizeDist(%q): %v", spec, err)
		}
		if d.min() != lo || d.max() != hi || math.Abs(d.mean()-mean) > 1e-9 {
			t.Fatalf("%q: min %d max %d mean %v, want %d %d %v", spec, d.min(), d.max(), d.mean(), lo, hi, mean)
		}
		r := rand.New(rand.NewPCG(1, 1))
		sum := 0
		const n = 20000
		for range n {
			s := d.sample(r)
			if s < lo || s > hi {
				t.Fatalf("%q: sample %d outside [%d, %d]", spec, s, lo, hi)
			}
			sum += s
		}
		if got := float64(sum) / n; math.Abs(got-mean)/mean > 0.05 {
			t.Fatalf("%q: sample mean %.1f, want about %.1f", spec, got, mean)
		}
	}
	f("1KiB", 1024, 1024, 1024)
	f("100:3,1KiB:1", 100, 1024, (300+1024)/4.0)
	f("uniform:100-300", 100, 300, 200)
	f("100,10k", 100, 10240, (100+10240)/2.0)

	for _, bad := range []string{"", "uniform:5-1", "uniform:1", "x:1", "100:0", "100:-1", "-5"} {
		if _, err := parseSizeDist(bad); err == nil {
			t.Errorf("parseSizeDist(%q) accepted", bad)
		}
	}
}
