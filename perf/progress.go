package perf

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether f is a terminal (TCGETS succeeds), which is when
// the CLI shows the live progress line by default. A /dev/null or a pipe is
// not. Safe for concurrent use.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progress owns the sampler goroutine: every second it appends one Sample to
// the recorder's timeline and, if out is set, prints a status line. On a
// terminal the line is rewritten in place with '\r'; otherwise one line per
// second is written, which suits logs.
type progress struct {
	rec      *recorder
	out      io.Writer
	inPlace  bool
	sched    *schedule
	duration time.Duration
	stop     chan struct{}
	done     chan struct{}
}

func startProgress(rec *recorder, out io.Writer, inPlace bool, sched *schedule, duration time.Duration) *progress {
	p := &progress{rec: rec, out: out, inPlace: inPlace, sched: sched, duration: duration,
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			s := p.rec.sample(now)
			if p.out != nil {
				p.print(now, s)
			}
		}
	}
}

func (p *progress) print(now time.Time, s Sample) {
	elapsed := now.Sub(p.rec.start)
	p99 := "-"
	if h := p.rec.lat.snapshot(); h.TotalCount() > 0 {
		p99 = fmt.Sprintf("%.2f ms", usToMs(h.ValueAtQuantile(99)))
	}
	remaining := ""
	if p.duration > 0 {
		remaining = fmt.Sprintf("  %s left", max(p.duration-elapsed, 0).Round(time.Second))
	}
	if p.sched != nil && p.sched.expected() > 0 {
		left := max(p.sched.expected()-p.rec.records.Load()-p.rec.errors.Load(), 0)
		remaining += fmt.Sprintf("  %d records left", left)
	}
	// Sample covers the last tick, so its counts are per-second rates.
	line := fmt.Sprintf("%5.0fs  %9d rec/s  %8.2f MB/s  p99 %s  errors %d%s",
		elapsed.Seconds(), s.Records, float64(s.Bytes)/1e6, p99, p.rec.errors.Load(), remaining)
	if p.inPlace {
		fmt.Fprintf(p.out, "\r\x1b[K%s", line)
	} else {
		fmt.Fprintln(p.out, line)
	}
}

// finish stops the sampler, adds the partial last second to the timeline and
// ends the in-place line. After it returns, the timeline is the caller's.
func (p *progress) finish(now time.Time) {
	close(p.stop)
	<-p.done
	if last := p.rec.timeline; len(last) == 0 || now.Sub(p.rec.start).Seconds() > last[len(last)-1].T {
		p.rec.sample(now)
	}
	if p.out != nil && p.inPlace {
		fmt.Fprintln(p.out)
	}
}
