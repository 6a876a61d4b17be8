package perf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testSuite = `
name: omb-like
defaults:
  brokers: [10.0.0.1:9092]
  duration: 20s
  idempotent: true
  topic: bench
workloads:
  - name: tiny
    record_size: 100
    partitions: 1
  - name: reuse
    mode: consume
    topic: bench-tiny
  - name: not-idem
    acks: "1"
    idempotent: false
matrix:
  record_sizes: [100, 1024, 10240]
  partitions: [1, 6, 100]
  acks: [all]
  rates: [0, 5000]
`

func TestParseSuite(t *testing.T) {
	s, err := ParseSuite([]byte(testSuite))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "omb-like" || len(s.Workloads) != 3+3*3*2 {
		t.Fatalf("name %q, %d workloads; want omb-like and 21", s.Name, len(s.Workloads))
	}
	tiny, reuse, notIdem := s.Workloads[0], s.Workloads[1], s.Workloads[2]
	if tiny.RecordSize != 100 || tiny.Partitions != 1 || tiny.Duration != 20*time.Second ||
		tiny.Brokers[0] != "10.0.0.1:9092" || tiny.Acks != "all" || tiny.Topic != "bench-tiny" {
		t.Fatalf("tiny = %+v", tiny)
	}
	if reuse.Mode != ModeConsume || reuse.Topic != "bench-tiny" {
		t.Fatalf("explicit topic not kept: %+v", reuse)
	}
	// One entry's idempotent: false must not leak into the others.
	if *notIdem.Idempotent || !*tiny.Idempotent || !*s.Workloads[3].Idempotent {
		t.Fatal("idempotent flag shared between workloads")
	}
	m := s.Workloads[3+2*3*2+1*2+1] // size 10240, 6 partitions, acks all, 5000/s
	if m.RecordSize != 10240 || m.Partitions != 6 || m.Acks != "all" || m.Rate != 5000 ||
		m.Name != "produce-10240B-6p-acksall-5000rps" || m.Topic != "bench-produce-10240B-6p-acksall-5000rps" {
		t.Fatalf("matrix entry = %+v", m)
	}
}

func TestParseSuiteRejects(t *testing.T) {
	f := func(yml, wantErr string) {
		t.Helper()
		_, err := ParseSuite([]byte(yml))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want one containing %q", err, wantErr)
		}
	}
	f("workloads:\n  - recrd_size: 5\n", "recrd_size")                      // typo
	f("defaults:\n  partitons: 5\nworkloads: [{}]\n", "partitons")          // typo in defaults
	f("matrix:\n  sizes: [1]\n", "sizes")                                   // typo in matrix
	f("name: x\n", "no workloads")                                          // empty
	f("workloads:\n  - acks: \"1\"\n    idempotent: true\n", "idempotence") // invalid combination
}

func TestWriteMarkdown(t *testing.T) {
	s, err := ParseSuite([]byte("name: t\nworkloads:\n  - {name: a}\n  - {name: b, mode: consume}\n  - {name: c}\n"))
	if err != nil {
		t.Fatal(err)
	}
	results := []*Result{
		{Workload: s.Workloads[0], Records: 1000, RecordsPerSec: 500, MBPerSec: 0.51,
			Latency:   &LatencySummary{P50: 1.5, P99: 2.25, P999: 1001, Max: 1002},
			BrokerCPU: &CPUUsage{SecondsPerGB: 3.25}, ClientCPU: &CPUUsage{SecondsPerGB: 1.5}},
		{Workload: s.Workloads[1], Records: 7, RecordsPerSec: 7},
		nil,
	}
	var b strings.Builder
	if err := WriteMarkdown(&b, s, results, []error{nil, nil, errors.New("dial | refused")}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if lines[0] != "## t" || len(lines) != 2+2+3 {
		t.Fatalf("table:\n%s", b.String())
	}
	cols := strings.Count(lines[2], "|")
	for _, l := range lines[3:] {
		if strings.Count(l, "|") != cols {
			t.Fatalf("row has %d pipes, header %d:\n%s", strings.Count(l, "|"), cols, l)
		}
	}
	for i, want := range []string{
		"| a | produce | 1024 B | 6 | all | max throughput | 1000 | 0 | 500 | 0.51 | 1.500 | 2.250 | 1001.000 | 1002.000 | 3.25 | 1.50 |",
		"| b | consume | 1024 B | 6 | all | max throughput | 7 | 0 | 7 | 0.00 | - | - | - | - | - | - |",
		"| c | produce | 1024 B | 6 | all | max throughput | error: dial / refused | | | | | | | | | |",
	} {
		if lines[4+i] != want {
			t.Fatalf("row %d:\n got %s\nwant %s", i, lines[4+i], want)
		}
	}
}
