package perf

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fakeResult(name string, stallAt int) *Result {
	h := newHist()
	r := &Result{Workload: Workload{Name: name, Mode: ModeProduce}}
	for i := range 10000 {
		v := int64(500 + i%700) // 0.5–1.2 ms
		if i >= stallAt && i < stallAt+50 {
			v = int64(time.Second / time.Microsecond)
		}
		_ = h.RecordValue(v)
	}
	for s := 1; s <= 10; s++ {
		r.Timeline = append(r.Timeline, Sample{T: float64(s), Records: 1000, Bytes: int64(s) * 1e6})
	}
	r.hist = h
	return r
}

func TestWritePlotPNGAndSVG(t *testing.T) {
	dir := t.TempDir()
	pngPath := filepath.Join(dir, "out.png")
	if err := WritePlot(pngPath, fakeResult("open loop", 5000), fakeResult("closed loop", 1e9)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if sz := img.Bounds().Size(); sz.X < 600 || sz.Y < 600 || len(b) < 20_000 {
		t.Fatalf("PNG %v, %d bytes: too small to hold two charts", sz, len(b))
	}

	svgPath := filepath.Join(dir, "out.svg")
	if err := WritePlot(svgPath, fakeResult("one", 0)); err != nil {
		t.Fatal(err)
	}
	svg, _ := os.ReadFile(svgPath)
	for _, want := range []string{"<svg", "Throughput over time", "Latency by percentile", "99.9%"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Fatalf("SVG lacks %q", want)
		}
	}
	if err := WritePlot(filepath.Join(dir, "out.gif"), fakeResult("x", 0)); err == nil || !strings.Contains(err.Error(), ".png") {
		t.Fatalf("unsupported extension accepted: %v", err)
	}
}

func TestPercentileCurve(t *testing.T) {
	r := fakeResult("x", 5000)
	pts := percentileCurve(r.hist)
	if pts[0].X != 1 || pts[len(pts)-1].Y < 999 {
		t.Fatalf("curve starts at x=%v, ends at %v ms; want 1 and the 1 s max", pts[0].X, pts[len(pts)-1].Y)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].X <= pts[i-1].X || pts[i].Y < pts[i-1].Y {
			t.Fatalf("curve not monotonic at %d: %v then %v", i, pts[i-1], pts[i])
		}
	}
	ticks := percentileTicks{}.Ticks(1, 1e4)
	var labels []string
	for _, tk := range ticks {
		labels = append(labels, tk.Label)
	}
	if got := strings.Join(labels, " "); got != "0% 90% 99% 99.9% 99.99%" {
		t.Fatalf("tick labels %q", got)
	}
}
