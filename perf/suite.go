package perf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Suite is a list of workloads run one after another, like an
// OpenMessaging Benchmark suite. The YAML form:
//
//	name: omb-like
//	defaults:            # any Workload field; applies to every entry
//	  duration: 30s
//	  brokers: [127.0.0.1:9092]
//	workloads:           # explicit entries, each overriding defaults
//	  - {name: small, record_size: 100, partitions: 1}
//	matrix:              # optional cartesian product, appended after
//	  modes: [produce]
//	  record_sizes: [100, 1024, 10240]
//	  partitions: [1, 6, 100]
//	  acks: ["1", all]
//	  rates: [0]
//
// Unknown keys are errors, so a typo cannot silently fall back to a
// default. Each entry without its own topic gets "<defaults topic>-<name>",
// a fresh topic, so runs do not read each other's data.
type Suite struct {
	Name      string
	Workloads []Workload
}

type suiteFile struct {
	Name      string      `yaml:"name"`
	Defaults  yaml.Node   `yaml:"defaults"`
	Workloads []yaml.Node `yaml:"workloads"`
	Matrix    *struct {
		Modes       []Mode    `yaml:"modes"`
		RecordSizes []int     `yaml:"record_sizes"`
		Partitions  []int32   `yaml:"partitions"`
		Acks        []string  `yaml:"acks"`
		Rates       []float64 `yaml:"rates"`
	} `yaml:"matrix"`
}

// LoadSuite reads a suite file. Safe for concurrent use.
func LoadSuite(path string) (*Suite, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSuite(b)
}

// ParseSuite parses suite YAML (see Suite) and validates every workload.
// Safe for concurrent use.
func ParseSuite(b []byte) (*Suite, error) {
	var sf suiteFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&sf); err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	base := DefaultWorkload()
	if err := decodeStrict(&sf.Defaults, &base); err != nil {
		return nil, fmt.Errorf("suite defaults: %w", err)
	}
	s := &Suite{Name: sf.Name}
	for i := range sf.Workloads {
		w := base
		if w.Idempotent != nil {
			// yaml.v3 decodes through a non-nil pointer; give each
			// workload its own bool so one entry cannot change another.
			v := *w.Idempotent
			w.Idempotent = &v
		}
		if err := decodeStrict(&sf.Workloads[i], &w); err != nil {
			return nil, fmt.Errorf("suite workload %d: %w", i+1, err)
		}
		if !hasKey(&sf.Workloads[i], "topic") {
			w.Topic = "" // derived below from the name
		}
		s.Workloads = append(s.Workloads, w)
	}
	if m := sf.Matrix; m != nil {
		modes, sizes, parts, acks, rates := m.Modes, m.RecordSizes, m.Partitions, m.Acks, m.Rates
		modes = orDefault(modes, base.Mode)
		sizes = orDefault(sizes, base.RecordSize)
		parts = orDefault(parts, base.Partitions)
		acks = orDefault(acks, base.Acks)
		rates = orDefault(rates, base.Rate)
		for _, mo := range modes {
			for _, sz := range sizes {
				for _, p := range parts {
					for _, a := range acks {
						for _, r := range rates {
							w := base
							w.Mode, w.RecordSize, w.Partitions, w.Acks, w.Rate = mo, sz, p, a, r
							w.Name, w.Topic = "", ""
							s.Workloads = append(s.Workloads, w)
						}
					}
				}
			}
		}
	}
	if len(s.Workloads) == 0 {
		return nil, errors.New("suite: no workloads and no matrix")
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.Name == "" {
			w.Name = autoName(*w)
		}
		if w.Topic == "" {
			w.Topic = base.Topic + "-" + topicSafe.ReplaceAllString(w.Name, "-")
		}
		if err := w.Validate(); err != nil {
			return nil, fmt.Errorf("suite workload %q: %w", w.Name, err)
		}
	}
	return s, nil
}

var topicSafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

func orDefault[T any](v []T, d T) []T {
	if len(v) == 0 {
		return []T{d}
	}
	return v
}

// decodeStrict decodes a YAML node into v rejecting unknown keys; yaml.Node
// has no KnownFields switch, so the node is re-encoded and decoded strictly.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind == 0 {
		return nil
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func autoName(w Workload) string {
	size := fmt.Sprintf("%dB", w.RecordSize)
	if w.SizeDist != "" {
		size = w.SizeDist
	}
	name := fmt.Sprintf("%s-%s-%dp-acks%s", w.Mode, size, w.Partitions, w.Acks)
	if w.Rate > 0 {
		name += fmt.Sprintf("-%.0frps", w.Rate)
	}
	return name
}

// RunSuite runs each workload in order with the given options, keeps going
// after a failed workload (its row shows the error), writes the Markdown
// table to md when the suite ends, and returns every result (nil for a
// workload that could not start) with the failures joined. Synchronous;
// safe to call from any goroutine.
func RunSuite(ctx context.Context, s *Suite, opts Options, md io.Writer) ([]*Result, error) {
	results := make([]*Result, len(s.Workloads))
	errs := make([]error, len(s.Workloads))
	for i, w := range s.Workloads {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		opts.logf("suite %s: %d/%d %s", s.Name, i+1, len(s.Workloads), w.Name)
		results[i], errs[i] = Run(ctx, w, opts)
	}
	if md != nil {
		if err := WriteMarkdown(md, s, results, errs); err != nil {
			return results, err
		}
	}
	var joined []error
	for i, err := range errs {
		if err != nil {
			joined = append(joined, fmt.Errorf("%s: %w", s.Workloads[i].Name, err))
		}
	}
	return results, errors.Join(joined...)
}

// WriteMarkdown writes one table row per workload. errs may be nil; a row
// with an error shows it instead of figures. Safe for concurrent use with
// distinct writers.
func WriteMarkdown(out io.Writer, s *Suite, results []*Result, errs []error) error {
	var b strings.Builder
	if s.Name != "" {
		fmt.Fprintf(&b, "## %s\n\n", s.Name)
	}
	b.WriteString("| workload | mode | size | partitions | acks | rate | records | errors | rec/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU s/GB | client CPU s/GB |\n")
	b.WriteString("|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, w := range s.Workloads {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s |", w.Name, w.Mode, sizeLabel(w), w.Partitions, w.Acks, rateLabel(w.Rate))
		var r *Result
		if i < len(results) {
			r = results[i]
		}
		if r == nil {
			msg := "not run"
			if i < len(errs) && errs[i] != nil {
				msg = "error: " + strings.ReplaceAll(errs[i].Error(), "|", "/")
			}
			fmt.Fprintf(&b, " %s | | | | | | | | | |\n", msg)
			continue
		}
		fmt.Fprintf(&b, " %d | %d | %.0f | %.2f |", r.Records, r.Errors, r.RecordsPerSec, r.MBPerSec)
		if l := r.Latency; l != nil {
			fmt.Fprintf(&b, " %.3f | %.3f | %.3f | %.3f |", l.P50, l.P99, l.P999, l.Max)
		} else {
			b.WriteString(" - | - | - | - |")
		}
		for _, u := range []*CPUUsage{r.BrokerCPU, r.ClientCPU} {
			if u != nil && u.SecondsPerGB > 0 {
				fmt.Fprintf(&b, " %.2f |", u.SecondsPerGB)
			} else {
				b.WriteString(" - |")
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(out, b.String())
	return err
}
