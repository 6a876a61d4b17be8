package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sluicemq/sluice/perf"
)

func init() {
	register("bench", "load generator for any Kafka-compatible broker: produce|consume|e2e|raw|suite FILE", runBench)
}

const benchUsage = `usage: sluice bench produce|consume|e2e|raw [flags]
       sluice bench suite FILE [--brokers ...] [--broker-pid N] [--out FILE.md] [--json] [--plot FILE]

  produce  kgo producers; latency is produce → ack
  consume  kgo consumers read the topic from its start to the end offsets at start
  e2e      produce and consume together; latency is send → consume
  raw      pre-encoded Produce requests on pipelined connections (broker capacity)
  suite    run a YAML suite and print a Markdown table

With --rate the run is open loop: latency counts from each record's intended
send time, so broker stalls are not hidden (coordinated omission).
`

func runBench(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, benchUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch sub := args[0]; sub {
	case "produce", "consume", "e2e", "raw":
		return benchOne(ctx, perf.Mode(sub), args[1:])
	case "suite":
		return benchSuite(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, benchUsage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "sluice bench: unknown workload %q\n\n%s", sub, benchUsage)
		return 2
	}
}

// outputFlags are the presentation flags shared by single runs and suites.
type outputFlags struct {
	json     bool
	plot     string
	progress bool
	quiet    bool
}

func (o *outputFlags) bind(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print the result as JSON on stdout instead of the summary")
	fs.StringVar(&o.plot, "plot", "", "write throughput-over-time and latency-percentile charts to this .png or .svg")
	fs.BoolVar(&o.progress, "progress", false, "print a progress line every second even when stderr is not a terminal")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line, even on a terminal")
}

func (o *outputFlags) options() perf.Options {
	opts := perf.Options{Log: os.Stderr}
	tty := perf.IsTerminal(os.Stderr)
	if !o.quiet && (tty || o.progress) {
		opts.Progress, opts.InPlace = os.Stderr, tty
	}
	return opts
}

func benchOne(ctx context.Context, mode perf.Mode, args []string) int {
	w := perf.DefaultWorkload()
	w.Mode = mode
	fs := flag.NewFlagSet("sluice bench "+string(mode), flag.ContinueOnError)
	var out outputFlags
	brokers := bindWorkload(fs, &w)
	out.bind(fs)
	idem := fs.Bool("idempotent", false, "idempotent producer; when not given, on iff acks=all (Kafka's default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sluice bench %s: unexpected argument %q\n", mode, fs.Arg(0))
		return 2
	}
	set := visited(fs)
	w.Brokers = splitList(*brokers)
	if set["idempotent"] {
		w.Idempotent = idem
	}
	if set["records"] && !set["duration"] {
		w.Duration = 0 // a record count alone bounds the run
	}
	if mode == perf.ModeConsume && !set["duration"] {
		w.Duration = 0 // drain the topic, however long it takes
	}
	res, err := perf.Run(ctx, w, out.options())
	if res == nil {
		fmt.Fprintf(os.Stderr, "sluice bench %s: %v\n", mode, err)
		return 1
	}
	if code := report(out, res); code != 0 {
		return code
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench %s: %v\n", mode, err)
		return 1
	}
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "sluice bench %s: %d records failed\n", mode, res.Errors)
		return 1
	}
	return 0
}

func benchSuite(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("sluice bench suite", flag.ContinueOnError)
	var out outputFlags
	out.bind(fs)
	brokers := fs.String("brokers", "", "override every workload's brokers (comma-separated)")
	pid := fs.Int("broker-pid", 0, "override every workload's broker pid (for CPU s/GB)")
	mdPath := fs.String("out", "", "write the Markdown table here (default: stdout, or nowhere with --json)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(os.Stderr, "sluice bench suite: need exactly one FILE\n\n"+benchUsage)
		return 2
	}
	s, err := perf.LoadSuite(pos[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench suite: %v\n", err)
		return 2
	}
	for i := range s.Workloads {
		if *brokers != "" {
			s.Workloads[i].Brokers = splitList(*brokers)
		}
		if *pid > 0 {
			s.Workloads[i].BrokerPID = *pid
		}
	}
	var md io.Writer
	switch {
	case *mdPath != "":
		f, err := os.Create(*mdPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice bench suite: %v\n", err)
			return 1
		}
		defer f.Close()
		md = f
	case !out.json:
		md = os.Stdout
	}
	results, runErr := perf.RunSuite(ctx, s, out.options(), md)
	var done []*perf.Result
	for _, r := range results {
		if r != nil {
			done = append(done, r)
		}
	}
	if out.json && printJSON(done) != nil {
		return 1
	}
	if drawPlot(out.plot, done) != nil {
		return 1
	}
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "sluice bench suite: %v\n", runErr)
		return 1
	}
	return 0
}

// report prints one result (summary or JSON) and draws the plot.
func report(out outputFlags, res *perf.Result) int {
	var err error
	if out.json {
		err = res.WriteJSON(os.Stdout)
	} else {
		err = res.WriteSummary(os.Stdout)
	}
	if err != nil || drawPlot(out.plot, []*perf.Result{res}) != nil {
		return 1
	}
	return 0
}

func printJSON(results []*perf.Result) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

func drawPlot(path string, results []*perf.Result) error {
	if path == "" || len(results) == 0 {
		return nil
	}
	if err := perf.WritePlot(path, results...); err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench: plot: %v\n", err)
		return err
	}
	fmt.Fprintf(os.Stderr, "plot written to %s\n", path)
	return nil
}

// bindWorkload registers the workload flags on fs, writing into w; the
// comma-separated broker list is returned for the caller to split.
func bindWorkload(fs *flag.FlagSet, w *perf.Workload) *string {
	brokers := fs.String("brokers", strings.Join(w.Brokers, ","), "bootstrap brokers, comma-separated")
	fs.StringVar(&w.Topic, "topic", w.Topic, "topic")
	fs.Func("partitions", fmt.Sprintf("partitions when creating the topic (default %d)", w.Partitions), int32Flag(&w.Partitions))
	fs.Func("replication-factor", fmt.Sprintf("replication factor when creating the topic (default %d; -1 = broker default)", w.ReplicationFactor),
		func(s string) error { var v int32; err := int32Flag(&v)(s); w.ReplicationFactor = int16(v); return err })
	fs.BoolVar(&w.CreateTopic, "create-topic", w.CreateTopic, "create the topic if missing")
	fs.IntVar(&w.RecordSize, "record-size", w.RecordSize, "record value bytes")
	fs.StringVar(&w.SizeDist, "size-dist", "", "value size distribution: uniform:MIN-MAX or SIZE:WEIGHT,... (overrides --record-size)")
	fs.IntVar(&w.Keys, "keys", 0, "distinct record keys (0 = no keys, sticky partitioning)")
	fs.IntVar(&w.Producers, "producers", w.Producers, "producer clients")
	fs.IntVar(&w.Consumers, "consumers", w.Consumers, "consumer clients")
	fs.StringVar(&w.Acks, "acks", w.Acks, "acks: 0, 1 or all")
	fs.DurationVar(&w.Linger, "linger", w.Linger, "producer linger")
	fs.Func("batch-bytes", fmt.Sprintf("max producer batch bytes; raw: bytes per partition batch (default %d)", w.BatchBytes), int32Flag(&w.BatchBytes))
	fs.StringVar(&w.Compression, "compression", w.Compression, "none, gzip, snappy, lz4 or zstd")
	fs.DurationVar(&w.Duration, "duration", w.Duration, "how long to send (0 with --records: until the count)")
	fs.Int64Var(&w.Records, "records", 0, "records to send (0 = bounded by --duration)")
	fs.Float64Var(&w.Rate, "rate", 0, "records/s across producers, open loop (0 = max throughput, closed loop)")
	fs.IntVar(&w.MaxInFlight, "max-in-flight", 0, "records buffered per producer (1 = strict closed loop; 0 = kgo default)")
	fs.IntVar(&w.Connections, "connections", w.Connections, "raw: connections per partition leader")
	fs.IntVar(&w.InFlight, "inflight", w.InFlight, "raw: pipelined requests per connection")
	fs.IntVar(&w.BrokerPID, "broker-pid", 0, "pid of a local broker, to report its CPU seconds per GB")
	fs.StringVar(&w.Name, "name", "", "label for plots and JSON")
	return brokers
}

func int32Flag(dst *int32) func(string) error {
	return func(s string) error {
		var v int32
		if _, err := fmt.Sscan(s, &v); err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		*dst = v
		return nil
	}
}

func visited(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseInterleaved lets positional arguments sit before, between or after
// flags (`suite FILE --brokers x`), which the flag package alone stops at.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
