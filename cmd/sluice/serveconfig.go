package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/node"
)

// serveConfig is everything `sluice serve` runs with.
type serveConfig struct {
	node            node.Config
	lis             listenerConf // the listener keys, until pickListener
	cl              clusterConf  // the cluster keys, until finishCluster
	metricsListen   string       // "" disables the HTTP listener
	logLevel        slog.Level
	logFormat       string // text or json
	shutdownTimeout time.Duration
	configFile      string
	warnings        []warning // logged once the logger exists
}

type warning struct {
	msg  string
	args []any
}

func (c *serveConfig) warn(msg string, args ...any) {
	c.warnings = append(c.warnings, warning{msg, args})
}

// setting is one key=value and where it came from, for error messages.
// rank orders the layers: the file 0, the environment 1, then each flag
// one more than the flag before it.
type setting struct {
	key, value, from string
	rank             int
}

const serveUsage = `usage: sluice serve [flags]

Runs a broker. Configuration, later layers winning for the same key:
built-in defaults, the --config file (Kafka server.properties syntax and key
names), SLUICE_* environment variables (SLUICE_LOG_DIRS sets log.dirs: upper
case, dots as underscores; SLUICE_* names that are not keys are ignored),
then flags in command-line order. Between synonyms Kafka's rule holds
whatever the layer: the more specific key wins (log.retention.ms over
.minutes over .hours, log.roll.ms over log.roll.hours, log.dirs over
log.dir), so log.retention.ms in the file beats --override
log.retention.hours=...; a warning says so. SIGTERM or SIGINT shuts down
cleanly; a second one exits at once with status 1. Exit status 2 means the
configuration was refused.

flags:
  --config FILE                 server.properties file
  --listeners PLAINTEXT://H:P   listeners
  --advertised-listeners H:P    advertised.listeners
  --log-dirs DIR, --data-dir DIR
                                log.dirs
  --node-id N                   node.id
  --metrics-listen H:P          metrics.listen ("" disables /metrics and /debug/pprof)
  --override KEY=VALUE          any key below (repeatable), as Kafka's --override
  --log-level L                 debug, info, warn or error (default info; $SLUICE_LOG_LEVEL)
  --log-format F                text or json (default text; $SLUICE_LOG_FORMAT)
  --shutdown-timeout D          how long a clean shutdown waits for in-flight requests (default 30s)

keys (see config/server.properties for what each means):
`

func printServeUsage(w io.Writer) {
	fmt.Fprint(w, serveUsage)
	for _, p := range serveProps {
		def := p.def
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(w, "  %-42s %s\n", p.name, def)
	}
}

// resolveServeConfig builds the configuration from args and env (os.Environ
// form). flag.ErrHelp means --help was asked for; any other error is a
// configuration the broker refuses.
func resolveServeConfig(args, env []string) (*serveConfig, error) {
	c := &serveConfig{node: node.DefaultConfig(), metricsListen: defaultMetricsListen}
	var flagSettings []setting
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&c.configFile, "config", "", "")
	byFlag := func(name, key string) {
		fs.Func(name, "", func(v string) error {
			flagSettings = append(flagSettings, setting{key: key, value: v, from: "--" + name})
			return nil
		})
	}
	byFlag("listeners", "listeners")
	byFlag("advertised-listeners", "advertised.listeners")
	byFlag("log-dirs", "log.dirs")
	byFlag("data-dir", "log.dirs")
	byFlag("node-id", "node.id")
	byFlag("metrics-listen", "metrics.listen")
	fs.Func("override", "", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("want key=value, got %q", v)
		}
		flagSettings = append(flagSettings, setting{key: strings.TrimSpace(k), value: val, from: "--override"})
		return nil
	})
	level := fs.String("log-level", envValue(env, "SLUICE_LOG_LEVEL", "info"), "")
	fs.StringVar(&c.logFormat, "log-format", envValue(env, "SLUICE_LOG_FORMAT", "text"), "")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("--log-level=%q: want debug, info, warn or error", *level)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return nil, fmt.Errorf("--log-format=%q: want text or json", c.logFormat)
	}

	merged := map[string]setting{}
	var unknown, ignored []string
	add := func(s setting) {
		switch {
		case findProp(s.key) != nil:
			merged[s.key] = s
		case ignoredKey(s.key):
			ignored = append(ignored, s.key)
		default:
			unknown = append(unknown, fmt.Sprintf("%s (%s)", s.key, s.from))
		}
	}
	if c.configFile != "" {
		data, err := os.ReadFile(c.configFile)
		if err != nil {
			return nil, err
		}
		entries, err := parseProperties(string(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.configFile, err)
		}
		for _, e := range entries {
			add(setting{key: e.key, value: e.value, from: c.configFile + ":" + strconv.Itoa(e.line), rank: 0})
		}
	}
	for _, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		if key, ok := envKey(name); ok && (findProp(key) != nil || ignoredKey(key)) {
			add(setting{key: key, value: v, from: "$" + name, rank: 1})
		}
	}
	for i, s := range flagSettings {
		s.rank = 2 + i
		add(s)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown properties: %s", strings.Join(unknown, ", "))
	}
	if len(ignored) > 0 {
		c.warn("ignoring Kafka properties sluice does not use", "keys", strings.Join(dedupe(ignored), ","))
	}

	var errs []error
	for _, p := range serveProps {
		s, ok := merged[p.name]
		if !ok {
			continue
		}
		target := c
		for _, o := range p.over {
			w, won := merged[o]
			if !won {
				continue
			}
			// The more specific key wins whatever its layer, as in Kafka;
			// say so when the loser came from a later layer.
			if s.rank > w.rank {
				c.warn("ignoring a key set in a later layer: a more specific synonym wins whatever its layer, as in Kafka",
					"ignored", fmt.Sprintf("%s=%s (from %s)", p.name, s.value, s.from),
					"winner", fmt.Sprintf("%s=%s (from %s)", o, w.value, w.from))
			}
			scratch := *c // validate the shadowed value, apply nothing
			scratch.warnings = nil
			target = &scratch
			break
		}
		if err := p.set(target, strings.TrimSpace(s.value)); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q (from %s): %w", p.name, s.value, s.from, err))
		}
	}
	if len(errs) == 0 {
		if key, err := c.pickListener(); err != nil {
			if s, ok := merged[key]; ok {
				err = fmt.Errorf("%s=%q (from %s): %w", key, s.value, s.from, err)
			} else {
				err = fmt.Errorf("%s: %w", key, err)
			}
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if key, err := c.finishCluster(); err != nil {
			if s, ok := merged[key]; ok {
				err = fmt.Errorf("%s=%q (from %s): %w", key, s.value, s.from, err)
			} else {
				err = fmt.Errorf("%s: %w", key, err)
			}
			errs = append(errs, err)
		}
	}
	if a, ok := merged["node.id"]; ok {
		if b, ok := merged["broker.id"]; ok && strings.TrimSpace(a.value) != strings.TrimSpace(b.value) {
			errs = append(errs, fmt.Errorf("node.id=%q (from %s) and broker.id=%q (from %s) disagree",
				a.value, a.from, b.value, b.from))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// envKey maps SLUICE_LOG_DIRS to log.dirs.
func envKey(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "SLUICE_")
	if !ok || rest == "" {
		return "", false
	}
	return strings.ToLower(strings.ReplaceAll(rest, "_", ".")), true
}

func envValue(env []string, name, def string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name && v != "" {
			def = v
		}
	}
	return def
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
