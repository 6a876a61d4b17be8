package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"

	"github.com/sluicemq/sluice/node"
)

func init() {
	register("serve", "run a broker (Kafka server.properties keys; --help lists them)", runServe)
}

// initTime is the fallback start of the startup clock when /proc cannot
// say when the process began.
var initTime = time.Now()

func runServe(args []string) int {
	// Catch signals before anything slow: a SIGTERM during recovery still
	// means a clean stop, not death by the default handler.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	sc, err := resolveServeConfig(args, os.Environ())
	if errors.Is(err, flag.ErrHelp) {
		printServeUsage(os.Stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice serve: %s\n(sluice serve --help lists flags and keys)\n",
			strings.ReplaceAll(err.Error(), "\n", "\nsluice serve: "))
		return 2
	}
	log := newServeLogger(os.Stderr, sc)
	slog.SetDefault(log)
	for _, w := range sc.warnings {
		log.Warn(w.msg, w.args...)
	}
	stopping := make(chan struct{})
	go func() {
		s := <-sigs
		log.Info("shutting down", "signal", s.String())
		close(stopping)
		s = <-sigs
		log.Error("second signal: exiting without a clean shutdown", "signal", s.String())
		os.Exit(1)
	}()

	cfg := sc.node
	cfg.Logger = log
	cfg.Net.Logger = log
	cfg.Metrics = metrics.NewSet()
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	// Bind the HTTP listener first: a taken port fails before the data
	// directory is touched.
	var hln net.Listener
	if sc.metricsListen != "" {
		if hln, err = net.Listen("tcp", sc.metricsListen); err != nil {
			log.Error("cannot listen for /metrics", "metrics.listen", sc.metricsListen, "err", err)
			return 1
		}
		defer hln.Close()
	}
	n, err := node.New(cfg)
	if err != nil {
		log.Error("cannot open the broker", "log.dirs", cfg.DataDir, "err", err)
		return 1
	}
	// A signal during recovery stops here: close what New opened and exit
	// cleanly without ever binding the Kafka port.
	select {
	case <-stopping:
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), sc.shutdownTimeout)
		err := n.Close(ctx)
		cancel()
		took := time.Since(start).Milliseconds()
		if err != nil {
			log.Error("shutdown before listening finished with errors", "err", err, "took_ms", took)
			return 1
		}
		log.Info("shutdown complete", "clean", true, "before_listening", true, "took_ms", took)
		return 0
	default:
	}
	if err := n.Start(); err != nil {
		log.Error("cannot listen", "listeners", cfg.Listen, "err", err)
		n.Close(context.Background())
		return 1
	}
	var hs *http.Server
	metricsAddr := "off"
	if hln != nil {
		hs = &http.Server{Handler: metricsHandler(cfg.Metrics, n.ShardsHandler()), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(hln)
		metricsAddr = hln.Addr().String()
	}
	ms := float64(sinceProcessStart().Microseconds()) / 1000
	listen := "(none: controller only)"
	if a := n.Addr(); a != nil {
		listen = a.String()
	}
	log.Info(fmt.Sprintf("started in %.1f ms", ms), "startup_ms", ms, "listen", listen,
		"advertised", n.Advertised(), "metrics", metricsAddr, "data_dir", cfg.DataDir)

	<-stopping
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), sc.shutdownTimeout)
	err = n.Close(ctx)
	cancel()
	if hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		hs.Shutdown(ctx)
		cancel()
	}
	took := time.Since(start).Milliseconds()
	if err != nil {
		log.Error("shutdown finished with errors", "err", err, "took_ms", took)
		return 1
	}
	log.Info("shutdown complete", "clean", true, "took_ms", took)
	return 0
}

func newServeLogger(w io.Writer, sc *serveConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: sc.logLevel}
	if sc.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// metricsHandler serves /metrics (the broker's set plus Go runtime and
// process metrics), /debug/pprof and /debug/shards (the NUMA pinning plan
// and partition placement) on a mux of its own, so nothing else registered
// on http.DefaultServeMux is exposed.
func metricsHandler(set *metrics.Set, shards http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/shards", shards)
	return mux
}

// sinceProcessStart is the time since the kernel started this process (so
// it counts exec, runtime and package init), from /proc/self/stat's
// starttime. That field has USER_HZ (100 Hz) resolution, so the figure may
// be up to 10 ms high. Off Linux it falls back to the time since package
// init.
func sinceProcessStart() time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	var ts unix.Timespec
	if err != nil || unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return time.Since(initTime)
	}
	// Fields after the parenthesized command name start at field 3 (state);
	// starttime is field 22.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 20 {
		return time.Since(initTime)
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Since(initTime)
	}
	d := time.Duration(ts.Nano()) - time.Duration(ticks)*(time.Second/100)
	if d < time.Since(initTime) {
		return time.Since(initTime)
	}
	return d
}
