package segstore

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// Files in the data directory, named as Kafka names them.
const (
	cleanShutdownFile  = ".kafka_cleanshutdown"
	recoveryPointFile  = "recovery-point-offset-checkpoint"
	logStartOffsetFile = "log-start-offset-checkpoint"
)

// Store is a data directory of partition logs sharing one committer (and so
// one io engine and group commit across all of them), or Config.Committers
// of them, each log bound to one (shard.go).
//
// Concurrency: every exported method is safe for concurrent use. Lock order:
// Store.mu, then Log.mu, then committer.qmu; doc.go has the whole order.
type Store struct {
	cfg Config
	fs  vfs.FS
	log *slog.Logger
	cs  []*committer // fixed after Open; a log's committer is Log.c

	mu      sync.Mutex
	logs    map[tpKey]*Log
	closing atomic.Bool
	ckMu    sync.Mutex
	bgStop  chan struct{}
	bgDone  chan struct{}
	cleaner *cleaner // fixed after Open (clean.go)
	// noDirect: Config.NoDirectWrites, or the file system refused O_DIRECT;
	// cold logs write through the page cache (direct.go).
	noDirect atomic.Bool
}

type tpKey struct {
	topic     string
	partition int32
}

// Open loads every partition directory under cfg.Dir, recovering what an
// unclean shutdown left, and starts the committer.
func Open(cfg Config) (*Store, error) {
	if cfg.Engine == nil {
		return nil, errors.New("segstore: Config.Engine is required")
	}
	if cfg.FS == nil {
		cfg.FS = vfs.OS
	}
	if cfg.Flush == "" {
		cfg.Flush = FlushAck
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = time.Minute
	}
	cfg.Defaults = cfg.Defaults.normalized()
	st := &Store{cfg: cfg, fs: cfg.FS, log: cfg.Logger, logs: map[tpKey]*Log{},
		bgStop: make(chan struct{}), bgDone: make(chan struct{})}
	st.noDirect.Store(cfg.NoDirectWrites)
	if err := st.newCommitters(); err != nil {
		return nil, err
	}
	if err := st.load(); err != nil {
		for _, l := range st.logs {
			l.closeSegs()
		}
		st.closeExtraEngines()
		return nil, err
	}
	for _, l := range st.logs {
		st.bind(l)
	}
	st.startCommitters()
	go st.background()
	st.startCleaner()
	return st, nil
}

func (st *Store) now() time.Time { return st.cfg.Now() }

func (st *Store) load() error {
	dir := st.cfg.Dir
	if err := st.fs.MkdirAll(dir); err != nil {
		return err
	}
	marker := filepath.Join(dir, cleanShutdownFile)
	clean := st.fs.Exists(marker)
	rps, err := readOffsets(st.fs, filepath.Join(dir, recoveryPointFile))
	if err != nil {
		st.log.Warn("recovery point checkpoint unreadable, recovering every segment", "err", err)
		rps, clean = nil, false
	}
	starts, err := readOffsets(st.fs, filepath.Join(dir, logStartOffsetFile))
	if err != nil {
		return err
	}
	cleaned, err := readOffsets(st.fs, filepath.Join(dir, cleanerOffsetFile))
	if err != nil {
		// Cleaning restarts from each log's start: more work, nothing lost.
		st.log.Warn("cleaner offset checkpoint unreadable, compacted logs will be cleaned from their start", "err", err)
	}
	names, err := st.fs.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		topic, p, ok := parseLogDir(n)
		if !ok {
			continue
		}
		k := tpKey{topic, p}
		l, err := st.openLog(topic, p, filepath.Join(dir, n), rps[k], starts[k], clean)
		if err != nil {
			return fmt.Errorf("open %s: %w", n, err)
		}
		l.cl.cleanedTo = min(cleaned[k], l.leo)
		st.logs[k] = l
	}
	if clean {
		if err := st.fs.Remove(marker); err != nil {
			return err
		}
		return st.fs.SyncDir(dir)
	}
	return nil
}

// parseLogDir splits "<topic>-<partition>".
func parseLogDir(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || strings.HasPrefix(name, "__cluster_metadata") {
		return "", 0, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 || ValidateTopic(name[:i]) != nil {
		return "", 0, false
	}
	return name[:i], int32(p), true
}

// ValidateTopic applies Kafka's topic name rules: 1–249 characters of
// [a-zA-Z0-9._-], not "." or "..".
func ValidateTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("invalid topic name %q", t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("invalid topic name %q: character %q", t, c)
		}
	}
	return nil
}

// Log returns a partition's log, or nil. Safe for concurrent use.
func (st *Store) Log(topic string, partition int32) *Log {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.logs[tpKey{topic, partition}]
}

// Logs returns every log. Safe for concurrent use.
func (st *Store) Logs() []*Log {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*Log, 0, len(st.logs))
	for _, l := range st.logs {
		out = append(out, l)
	}
	return out
}

// CreateLog creates a partition's directory and first segment, or returns the
// existing log (with cfg applied). Safe for concurrent use.
func (st *Store) CreateLog(topic string, partition int32, cfg LogConfig) (*Log, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	if st.closing.Load() {
		return nil, ErrClosed
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	k := tpKey{topic, partition}
	if l := st.logs[k]; l != nil {
		l.SetConfig(cfg)
		return l, nil
	}
	dir := filepath.Join(st.cfg.Dir, fmt.Sprintf("%s-%d", topic, partition))
	if err := st.fs.MkdirAll(dir); err != nil {
		return nil, storageErr("create partition dir", err)
	}
	if err := st.fs.SyncDir(st.cfg.Dir); err != nil {
		return nil, storageErr("sync data dir", err)
	}
	s, err := createSegment(st.fs, dir, 0)
	if err != nil {
		return nil, storageErr("create segment", err)
	}
	l := &Log{store: st, topic: topic, partition: partition, dir: dir, cfg: cfg.normalized(),
		segs: []*segment{s}, lastFlush: st.now(), cidx: -1}
	l.noteConfigLocked()
	st.bind(l)
	st.logs[k] = l
	return l, nil
}

// DeleteLog removes a partition's log and its directory. Appends still queued
// fail with ErrClosed; readers holding Slices keep reading until they
// release them. Safe for concurrent use.
func (st *Store) DeleteLog(topic string, partition int32) error {
	st.mu.Lock()
	l := st.logs[tpKey{topic, partition}]
	delete(st.logs, tpKey{topic, partition})
	st.mu.Unlock()
	if l == nil {
		return nil
	}
	st.unbound(topic, partition)
	l.lockFiles() // no cleaning pass renames files in the directory below
	defer l.cl.files.Unlock()
	// The sticky error turns every later call on l away before it touches segs.
	l.mu.Lock()
	l.closed, l.err = true, ErrClosed
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	if err := st.fs.RemoveAll(l.dir); err != nil {
		return storageErr("delete partition dir", err)
	}
	if err := st.fs.SyncDir(st.cfg.Dir); err != nil {
		return err
	}
	// A log of the same name created later must not inherit the checkpoint.
	return st.saveCleanerOffsets()
}
