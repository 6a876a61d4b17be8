package perf

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// sizeDist draws record value sizes. Either it is uniform over [lo, hi] or
// it picks among sizes by cumulative weight. It is immutable after parsing;
// callers bring their own *rand.Rand, so one sizeDist serves many goroutines.
type sizeDist struct {
	uniform bool
	lo, hi  int
	sizes   []int
	cum     []float64 // cumulative weights, last == total
}

func fixedSize(n int) sizeDist { return sizeDist{sizes: []int{n}, cum: []float64{1}} }

// parseSizeDist accepts "uniform:MIN-MAX" or "SIZE:WEIGHT,SIZE:WEIGHT,...",
// sizes with an optional KiB/MiB (or k/m) suffix, e.g. "100:1,1KiB:2,10KiB:1".
func parseSizeDist(s string) (sizeDist, error) {
	if rest, ok := strings.CutPrefix(s, "uniform:"); ok {
		a, b, ok := strings.Cut(rest, "-")
		lo, err1 := parseSize(a)
		hi, err2 := parseSize(b)
		if !ok || err1 != nil || err2 != nil || lo > hi {
			return sizeDist{}, fmt.Errorf("size-dist %q: want uniform:MIN-MAX", s)
		}
		return sizeDist{uniform: true, lo: lo, hi: hi}, nil
	}
	var d sizeDist
	total := 0.0
	for _, part := range strings.Split(s, ",") {
		sz, wt, hasWeight := strings.Cut(strings.TrimSpace(part), ":")
		n, err := parseSize(sz)
		if err != nil {
			return sizeDist{}, fmt.Errorf("size-dist %q: %v", s, err)
		}
		w := 1.0
		if hasWeight {
			if w, err = strconv.ParseFloat(wt, 64); err != nil || w <= 0 {
				return sizeDist{}, fmt.Errorf("size-dist %q: weight %q must be positive", s, wt)
			}
		}
		total += w
		d.sizes = append(d.sizes, n)
		d.cum = append(d.cum, total)
	}
	return d, nil
}

// parseSize reads a byte count such as 100, 1KiB, 10k or 1MiB.
func parseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	mult := 1
	for _, suf := range []struct {
		s string
		m int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"k", 1 << 10}, {"K", 1 << 10}, {"m", 1 << 20}, {"M", 1 << 20}} {
		if v, ok := strings.CutSuffix(s, suf.s); ok {
			s, mult = v, suf.m
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// sample draws one size. r must not be shared between goroutines.
func (d sizeDist) sample(r *rand.Rand) int {
	if d.uniform {
		return d.lo + r.IntN(d.hi-d.lo+1)
	}
	if len(d.sizes) == 1 {
		return d.sizes[0]
	}
	x := r.Float64() * d.cum[len(d.cum)-1]
	return d.sizes[sort.SearchFloat64s(d.cum, x)]
}

func (d sizeDist) min() int {
	if d.uniform {
		return d.lo
	}
	m := d.sizes[0]
	for _, s := range d.sizes {
		m = min(m, s)
	}
	return m
}

func (d sizeDist) max() int {
	if d.uniform {
		return d.hi
	}
	m := 0
	for _, s := range d.sizes {
		m = max(m, s)
	}
	return m
}

// mean is the expected size, used to size raw batches.
func (d sizeDist) mean() float64 {
	if d.uniform {
		return float64(d.lo+d.hi) / 2
	}
	sum, prev := 0.0, 0.0
	for i, s := range d.sizes {
		sum += float64(s) * (d.cum[i] - prev)
		prev = d.cum[i]
	}
	return sum / d.cum[len(d.cum)-1]
}

// newPayload returns n incompressible bytes from a fixed seed. Values are
// slices of it and are never written, so every producer shares one buffer;
// random content keeps compression from flattering the numbers.
func newPayload(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{'s', 'l', 'u', 'i', 'c', 'e'})
	_, _ = r.Read(b)
	return b
}
