package perf

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WritePlot draws two charts, one above the other, into path (.png or
// .svg): throughput (MB/s) over time, and the latency percentile curve in
// the HdrHistogram style, x = 1/(1-q) on a log axis labelled as percentiles
// so the tail gets as much room as the median. Several results become
// several lines with a legend. Safe to call concurrently for different
// paths; results are only read.
func WritePlot(path string, results ...*Result) error {
	if len(results) == 0 {
		return errors.New("plot: no results")
	}
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("plot %s: want a .png or .svg file", path)
	}
	tp, err := throughputPlot(results)
	if err != nil {
		return err
	}
	lp, err := latencyPlot(results)
	if err != nil {
		return err
	}
	w, h := 22*vg.Centimeter, 24*vg.Centimeter
	var canvas interface {
		vg.CanvasSizer
		io.WriterTo
	}
	if ext == ".svg" {
		canvas = vgsvg.New(w, h)
	} else {
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))}
	}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Millimeter * 4, PadBottom: vg.Millimeter * 4,
		PadLeft: vg.Millimeter * 4, PadRight: vg.Millimeter * 6, PadY: vg.Centimeter}
	dc := draw.New(canvas)
	cs := plot.Align([][]*plot.Plot{{tp}, {lp}}, tiles, dc)
	tp.Draw(cs[0][0])
	lp.Draw(cs[1][0])

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func label(r *Result, i int) string {
	if r.Workload.Name != "" {
		return r.Workload.Name
	}
	return fmt.Sprintf("%s #%d (%s)", r.Workload.Mode, i+1, rateLabel(r.Workload.Rate))
}

func throughputPlot(results []*Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Throughput over time"
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "MB/s"
	p.Legend.Top = true
	for i, r := range results {
		pts := make(plotter.XYs, 0, len(r.Timeline))
		prevT := 0.0
		for _, s := range r.Timeline {
			// The last sample may cover less than a second.
			if dt := s.T - prevT; dt > 0.05 {
				pts = append(pts, plotter.XY{X: s.T, Y: float64(s.Bytes) / 1e6 / dt})
			}
			prevT = s.T
		}
		if len(pts) == 0 {
			continue
		}
		if err := addLine(p, pts, r, i); err != nil {
			return nil, err
		}
	}
	p.Add(plotter.NewGrid())
	p.Y.Min = 0
	return p, nil
}

func latencyPlot(results []*Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency by percentile"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = percentileTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	drawn := 0
	for i, r := range results {
		pts := percentileCurve(r.hist)
		if len(pts) == 0 {
			continue
		}
		if err := addLine(p, pts, r, i); err != nil {
			return nil, err
		}
		drawn++
	}
	if drawn == 0 {
		// A log axis needs a positive range even with nothing to show.
		p.X.Min, p.X.Max = 1, 10
		p.Title.Text += " (no latency samples)"
	}
	p.Add(plotter.NewGrid())
	p.Y.Min = 0
	return p, nil
}

// percentileCurve samples the histogram at 20 points per decade of
// 1/(1-q), up to the resolution its sample count supports, ending at the
// max, as HdrHistogram's plotter does.
func percentileCurve(h *hdrhistogram.Histogram) plotter.XYs {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	n := float64(h.TotalCount())
	var pts plotter.XYs
	for k := 0.0; math.Pow(10, k) <= n; k += 0.05 {
		x := math.Pow(10, k)
		q := 100 * (1 - 1/x)
		pts = append(pts, plotter.XY{X: x, Y: usToMs(h.ValueAtQuantile(q))})
	}
	return append(pts, plotter.XY{X: math.Max(n, pts[len(pts)-1].X*1.01), Y: usToMs(h.Max())})
}

// percentileTicks labels each decade of 1/(1-q) as the percentile it is:
// 1 → 0%, 10 → 90%, 100 → 99%, 1000 → 99.9%...
type percentileTicks struct{}

func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi*1.0001; e++ {
		x := math.Pow(10, e)
		if x < lo*0.9999 {
			continue
		}
		decimals := max(0, int(e)-2) // 10^3 → 99.9 needs one
		ts = append(ts, plot.Tick{Value: x, Label: strconv.FormatFloat(100*(1-1/x), 'f', decimals, 64) + "%"})
	}
	return ts
}

func lineColor(i int) color.Color {
	palette := []color.RGBA{
		{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, {R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	}
	return palette[i%len(palette)]
}

// addLine draws result i's curve in its colour and names it in the legend.
func addLine(p *plot.Plot, pts plotter.XYs, r *Result, i int) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = lineColor(i)
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(label(r, i), l)
	return nil
}
