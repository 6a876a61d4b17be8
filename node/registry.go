package node

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/sluicemq/sluice/segstore"
)

const metadataFile = "sluice-metadata.json"

// topic is one topic. name and id never change; parts and configs are
// replaced (never mutated in place) under registry.mu, so a reader holding
// the slice or map it loaded under the lock may keep using it.
type topic struct {
	name    string
	id      [16]byte
	parts   []*partition
	configs map[string]string // overrides of the broker defaults
}

// registry owns the broker's metadata: topics, their partitions and the
// persisted copy. Safe for concurrent use. Changes are serialized by adminMu,
// held across the metadata write and log creation (disk I/O, so changes run
// off the event loops); mu guards the maps and is held only to read or swap
// them, so lookups on the produce/fetch path never wait for a disk.
// Lock order: adminMu, mu.
type registry struct {
	cfg   *Config
	fs    vfs.FS
	store *segstore.Store
	path  string

	adminMu sync.Mutex
	mu      sync.RWMutex
	topics  map[string]*topic
	byID    map[[16]byte]*topic
}

// Errors the handlers map to Kafka codes.
var (
	errTopicExists    = errors.New("topic already exists")
	errUnknownTopic   = errors.New("unknown topic")
	errInvalidTopic   = errors.New("invalid topic")
	errInvalidParts   = errors.New("invalid partitions")
	errInvalidReplica = errors.New("invalid replication factor")
	errInvalidConfig  = errors.New("invalid config")
)

// persisted form of the metadata
type metaFile struct {
	Version int         `json:"version"`
	Topics  []metaTopic `json:"topics"`
}

type metaTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []partState       `json:"partitions"`
}

func newRegistry(cfg *Config, fs vfs.FS, store *segstore.Store) *registry {
	return &registry{cfg: cfg, fs: fs, store: store, path: filepath.Join(cfg.DataDir, metadataFile),
		topics: map[string]*topic{}, byID: map[[16]byte]*topic{}}
}

// load reads the metadata file, opens (or re-creates) every partition's log
// and deletes logs of topics the metadata no longer has: the metadata is
// written before logs are created and after the topic is gone from it, so a
// log without metadata is a deletion a crash interrupted.
func (r *registry) load() error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	var mf metaFile
	data, err := vfs.ReadFile(r.fs, r.path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &mf); err != nil {
			return fmt.Errorf("node: %s: %w", r.path, err)
		}
	case !r.fs.Exists(r.path):
	default:
		return fmt.Errorf("node: %w", err)
	}
	for _, mt := range mf.Topics {
		id, err := base64.RawURLEncoding.DecodeString(mt.ID)
		if err != nil || len(id) != 16 {
			return fmt.Errorf("node: %s: topic %q has a bad id %q", r.path, mt.Name, mt.ID)
		}
		t := &topic{name: mt.Name, configs: mt.Configs}
		copy(t.id[:], id)
		lc := r.cfg.logConfigFor(t.configs)
		for i, ps := range mt.Partitions {
			l, err := r.store.CreateLog(t.name, int32(i), lc)
			if err != nil {
				return fmt.Errorf("node: open %s-%d: %w", t.name, i, err)
			}
			t.parts = append(t.parts, newPartition(t, int32(i), l, ps))
		}
		r.topics[t.name], r.byID[t.id] = t, t
	}
	for _, l := range r.store.Logs() {
		t := r.topics[l.Topic()]
		if t == nil || int(l.Partition()) >= len(t.parts) {
			r.cfg.Logger.Warn("deleting a log the metadata does not list (an interrupted topic deletion)",
				"topic", l.Topic(), "partition", l.Partition())
			if err := r.store.DeleteLog(l.Topic(), l.Partition()); err != nil {
				return fmt.Errorf("node: delete stray log: %w", err)
			}
		}
	}
	return nil
}

// saveLocked writes the metadata file atomically. adminMu must be held
// (it reads parts and configs, which only adminMu holders change).
func (r *registry) saveLocked(topics map[string]*topic) error {
	mf := metaFile{Version: 1}
	for _, t := range topics {
		mt := metaTopic{Name: t.name, ID: base64.RawURLEncoding.EncodeToString(t.id[:]), Configs: t.configs}
		for _, p := range t.parts {
			mt.Partitions = append(mt.Partitions, p.state())
		}
		mf.Topics = append(mf.Topics, mt)
	}
	sort.Slice(mf.Topics, func(i, j int) bool { return mf.Topics[i].Name < mf.Topics[j].Name })
	data, err := json.MarshalIndent(&mf, "", " ")
	if err != nil {
		return err
	}
	if err := vfs.WriteFileAtomic(r.fs, r.path, data); err != nil {
		return fmt.Errorf("%w: write %s: %w", segstore.ErrStorage, r.path, err)
	}
	return nil
}

func (r *registry) get(name string) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.topics[name]
}

func (r *registry) getByID(id [16]byte) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byID[id]
}

// partitions returns the topic's current partitions (a snapshot).
func (r *registry) partitions(t *topic) []*partition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return t.parts
}

// partition looks a partition up by topic name; nil when either is unknown.
func (r *registry) partition(name string, idx int32) *partition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.topics[name]
	if t == nil || idx < 0 || int(idx) >= len(t.parts) {
		return nil
	}
	return t.parts[idx]
}

// configs returns the topic's overrides (a snapshot; do not modify).
func (r *registry) configs(t *topic) map[string]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return t.configs
}

// list returns every topic sorted by name.
func (r *registry) list() []*topic {
	r.mu.RLock()
	out := make([]*topic, 0, len(r.topics))
	for _, t := range r.topics {
		out = append(out, t)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// validateNewTopicLocked checks a name as Kafka does, including the rule that two
// topics may not differ only by '.' versus '_' (their metric names collide).
func (r *registry) validateNewTopicLocked(name string) error {
	if err := segstore.ValidateTopic(name); err != nil {
		return fmt.Errorf("%w: %w", errInvalidTopic, err)
	}
	if r.topics[name] != nil {
		return fmt.Errorf("%w: %q", errTopicExists, name)
	}
	if strings.ContainsAny(name, "._") {
		norm := strings.ReplaceAll(name, ".", "_")
		for other := range r.topics {
			if strings.ReplaceAll(other, ".", "_") == norm {
				return fmt.Errorf("%w: %q collides with existing topic %q", errInvalidTopic, name, other)
			}
		}
	}
	return nil
}

// create makes a topic with n partitions and the given config overrides;
// validateOnly checks without creating. Safe for concurrent use; does disk
// I/O, so never call it from an event loop.
func (r *registry) create(name string, n int32, rf int16, configs map[string]string, validateOnly bool) (*topic, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d partitions (must be at least 1)", errInvalidParts, n)
	}
	if rf != 1 {
		return nil, fmt.Errorf("%w: %d (this cluster has one broker)", errInvalidReplica, rf)
	}
	for k, v := range configs {
		if err := checkTopicConfig(k, &v); err != nil {
			return nil, fmt.Errorf("%w: %w", errInvalidConfig, err)
		}
	}
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	if err := r.validateNewTopicLocked(name); err != nil {
		return nil, err
	}
	if validateOnly {
		return nil, nil
	}
	t := &topic{name: name, configs: trimConfigs(configs)}
	if _, err := rand.Read(t.id[:]); err != nil {
		return nil, err
	}
	for i := int32(0); i < n; i++ {
		t.parts = append(t.parts, newPartition(t, i, nil, r.initialState()))
	}
	next := cloneTopics(r.topics)
	next[name] = t
	if err := r.saveLocked(next); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.topics, r.byID[t.id] = next, t
	r.mu.Unlock()
	return t, r.openLogsLocked(t, 0)
}

// openLogsLocked creates the logs of t's partitions from index from on;
// until then those partitions answer LEADER_NOT_AVAILABLE. adminMu held.
func (r *registry) openLogsLocked(t *topic, from int) error {
	lc := r.cfg.logConfigFor(t.configs)
	for _, p := range t.parts[from:] {
		l, err := r.store.CreateLog(t.name, p.index, lc)
		if err != nil {
			return fmt.Errorf("%w: create log %s-%d: %w", segstore.ErrStorage, t.name, p.index, err)
		}
		p.setLog(l)
	}
	return nil
}

func (r *registry) initialState() partState {
	id := r.cfg.NodeID
	return partState{Leader: id, LeaderEpoch: 0, Replicas: []int32{id}, ISR: []int32{id}}
}

// delete removes a topic: metadata first, then its logs.
func (r *registry) delete(name string) error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	t := r.topics[name]
	if t == nil {
		return fmt.Errorf("%w: %q", errUnknownTopic, name)
	}
	next := cloneTopics(r.topics)
	delete(next, name)
	if err := r.saveLocked(next); err != nil {
		return err
	}
	r.mu.Lock()
	r.topics = next
	delete(r.byID, t.id)
	r.mu.Unlock()
	var errs []error
	for _, p := range t.parts {
		p.close()
		if err := r.store.DeleteLog(name, p.index); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// addPartitions grows a topic to total partitions.
func (r *registry) addPartitions(name string, total int32, validateOnly bool) error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	t := r.topics[name]
	if t == nil {
		return fmt.Errorf("%w: %q", errUnknownTopic, name)
	}
	have := int32(len(t.parts))
	if total <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; the count can only grow", errInvalidParts, name, have)
	}
	if validateOnly {
		return nil
	}
	parts := append([]*partition(nil), t.parts...)
	for i := have; i < total; i++ {
		parts = append(parts, newPartition(t, i, nil, r.initialState()))
	}
	old := t.parts
	r.mu.Lock()
	t.parts = parts
	r.mu.Unlock()
	if err := r.saveLocked(r.topics); err != nil {
		r.mu.Lock()
		t.parts = old
		r.mu.Unlock()
		return err
	}
	return r.openLogsLocked(t, int(have))
}

// setConfigs replaces a topic's overrides (already validated) and applies
// them to its logs.
func (r *registry) setConfigs(t *topic, overrides map[string]string) error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	if r.topics[t.name] != t {
		return fmt.Errorf("%w: %q", errUnknownTopic, t.name)
	}
	old := t.configs
	overrides = trimConfigs(overrides)
	r.mu.Lock()
	t.configs = overrides
	r.mu.Unlock()
	if err := r.saveLocked(r.topics); err != nil {
		r.mu.Lock()
		t.configs = old
		r.mu.Unlock()
		return err
	}
	lc := r.cfg.logConfigFor(overrides)
	for _, p := range t.parts {
		if l := p.getLog(); l != nil {
			l.SetConfig(lc)
		}
	}
	return nil
}

// count returns the number of topics and partitions.
func (r *registry) count() (topics, partitions int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, t := range r.topics {
		partitions += len(t.parts)
	}
	return len(r.topics), partitions
}

func cloneTopics(m map[string]*topic) map[string]*topic {
	out := make(map[string]*topic, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
