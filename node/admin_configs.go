package node

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/netpoll"
	"github.com/sluicemq/sluice/segstore"
)

// Config machinery shared by DescribeConfigs, AlterConfigs and
// IncrementalAlterConfigs: the broker properties sluice reports, the
// describe entries, and the read-modify-write of a topic's overrides.

// brokerProp is one broker property DescribeConfigs reports. Broker
// properties are read at start-up (command line / config file) and are all
// read-only here; the only dynamic broker configs, the replication throttle
// rates, are in replthrottle_config.go.
type brokerProp struct {
	name string
	typ  kmsg.ConfigType
	doc  string
	// get is the configured value as Kafka prints it (nil: unset).
	get func(c *Config) *string
	// show, when set, is the effective value reported instead (a derived
	// or resolved form of get).
	show func(n *Node) *string
}

func sp(s string) *string { return &s }

// brokerProps lists the broker properties that are not the broker-wide
// default of a topic config; those come from topicConfigs' brokerName.
var brokerProps = []brokerProp{
	{name: "node.id", typ: kmsg.ConfigTypeInt, doc: "this broker's id",
		get: func(c *Config) *string { return sp(strconv.Itoa(int(c.NodeID))) }},
	{name: "broker.id", typ: kmsg.ConfigTypeInt, doc: "this broker's id (same as node.id)",
		get: func(c *Config) *string { return sp(strconv.Itoa(int(c.NodeID))) }},
	{name: "listeners", typ: kmsg.ConfigTypeString, doc: "address the Kafka listener binds",
		get: func(c *Config) *string { return sp(withScheme(c.Listen)) }},
	{name: "advertised.listeners", typ: kmsg.ConfigTypeString, doc: "address clients are told to connect to",
		get: func(c *Config) *string {
			if c.Advertised == "" {
				return nil
			}
			return sp(withScheme(c.Advertised))
		},
		show: func(n *Node) *string { return sp("PLAINTEXT://" + n.Advertised()) }},
	{name: "log.dirs", typ: kmsg.ConfigTypeString, doc: "the data directory (one)",
		get: func(c *Config) *string { return sp(c.DataDir) },
		show: func(n *Node) *string {
			if abs, err := filepath.Abs(n.cfg.DataDir); err == nil {
				return &abs
			}
			return sp(n.cfg.DataDir)
		}},
	{name: "broker.rack", typ: kmsg.ConfigTypeString, doc: "rack of this broker",
		get: func(c *Config) *string {
			if c.Rack == "" {
				return nil
			}
			return sp(c.Rack)
		}},
	{name: "num.partitions", typ: kmsg.ConfigTypeInt, doc: "partitions of an auto-created topic",
		get: func(c *Config) *string { return sp(strconv.Itoa(int(c.NumPartitions))) }},
	{name: "default.replication.factor", typ: kmsg.ConfigTypeInt, doc: "replication factor of an auto-created topic",
		get: func(c *Config) *string { return sp(strconv.Itoa(int(c.DefaultReplicationFactor))) }},
	{name: "auto.create.topics.enable", typ: kmsg.ConfigTypeBoolean, doc: "create unknown topics on produce / metadata",
		get: func(c *Config) *string { return sp(strconv.FormatBool(c.AutoCreateTopics)) }},
	{name: "delete.topic.enable", typ: kmsg.ConfigTypeBoolean, doc: "may topics be deleted",
		get: func(c *Config) *string { return sp(strconv.FormatBool(c.DeleteTopicEnable)) }},
	{name: "log.flush.policy", typ: kmsg.ConfigTypeString, doc: "sluice: ack (fsync before acknowledging), interval or os",
		get: func(c *Config) *string { return sp(string(c.Flush)) }},
	{name: "log.flush.interval.messages", typ: kmsg.ConfigTypeLong, doc: "messages between fsyncs under log.flush.policy=interval",
		get: func(c *Config) *string {
			if c.FlushMessages <= 0 {
				return sp("9223372036854775807")
			}
			return sp(itoa(c.FlushMessages))
		}},
	{name: "log.flush.interval.ms", typ: kmsg.ConfigTypeLong, doc: "ms between fsyncs under log.flush.policy=interval",
		get: func(c *Config) *string {
			if c.FlushEvery <= 0 {
				return nil
			}
			return sp(itoa(c.FlushEvery.Milliseconds()))
		}},
	{name: "log.flush.offset.checkpoint.interval.ms", typ: kmsg.ConfigTypeInt, doc: "how often recovery points are written",
		get: func(c *Config) *string { return sp(itoa(c.CheckpointEvery.Milliseconds())) }},
	{name: "log.cleaner.enable", typ: kmsg.ConfigTypeBoolean, doc: "run the log cleaner for cleanup.policy=compact topics",
		get: func(c *Config) *string { return sp(strconv.FormatBool(c.CleanerEnable)) }},
	{name: "log.cleaner.backoff.ms", typ: kmsg.ConfigTypeLong, doc: "the log cleaner's pause when nothing is due",
		get: func(c *Config) *string { return sp(itoa(c.CleanerBackoff.Milliseconds())) }},
	{name: "log.cleaner.dedupe.buffer.size", typ: kmsg.ConfigTypeLong, doc: "memory for one cleaning pass's key map",
		get: func(c *Config) *string { return sp(itoa(c.CleanerDedupeBytes)) }},
	{name: "io.engine", typ: kmsg.ConfigTypeString, doc: "sluice: auto, uring or sync",
		get: func(c *Config) *string { return sp(c.IOEngine) }},
	{name: "socket.request.max.bytes", typ: kmsg.ConfigTypeInt, doc: "largest request accepted",
		get: func(c *Config) *string {
			if c.Net.MaxFrameSize <= 0 {
				return sp(strconv.Itoa(netpoll.DefaultMaxFrameSize))
			}
			return sp(strconv.Itoa(int(c.Net.MaxFrameSize)))
		}},
}

func withScheme(hostport string) string {
	if strings.Contains(hostport, "://") {
		return hostport
	}
	return "PLAINTEXT://" + hostport
}

// brokerEntry is one broker property's describe data.
type brokerEntry struct {
	name   string
	typ    kmsg.ConfigType
	doc    string
	value  *string // effective
	def    *string // the value without a config file (nil: none)
	static bool    // set to something other than the default
	// Dynamic broker configs (replthrottle_config.go): dynamicKey marks
	// one (not read-only); dynamic is the source of value when a dynamic
	// setting gives it (0: none), clusterDefault the cluster-wide dynamic
	// value when the entry is a broker's own.
	dynamicKey     bool
	dynamic        kmsg.ConfigSource
	clusterDefault *string
}

// brokerEntries is the broker's effective configuration, sorted by name.
// A property counts as set by the operator (STATIC_BROKER_CONFIG) when its
// value differs from the default; one set to its default value reads as
// DEFAULT_CONFIG, since Config does not record where a value came from.
func (n *Node) brokerEntries() []brokerEntry {
	defs := DefaultConfig()
	var out []brokerEntry
	add := func(name string, typ kmsg.ConfigType, doc string, cur, def *string, shown *string) {
		e := brokerEntry{name: name, typ: typ, doc: doc, value: cur, def: def}
		e.static = cur != nil && (def == nil || *cur != *def)
		if shown != nil {
			e.value = shown
		}
		out = append(out, e)
	}
	for _, b := range brokerProps {
		var shown *string
		if b.show != nil {
			shown = b.show(n)
		}
		add(b.name, b.typ, b.doc, b.get(&n.cfg), b.get(&defs), shown)
	}
	for i := range topicConfigs {
		d := &topicConfigs[i]
		if d.topicOnly {
			continue
		}
		add(d.brokerName, d.typ, "default of topic config "+d.name+": "+d.doc, sp(d.def(&n.cfg)), sp(d.def(&defs)), nil)
	}
	out = append(out, n.dynamicBrokerEntries(strconv.Itoa(int(n.cfg.NodeID)))...)
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (e *brokerEntry) source() kmsg.ConfigSource {
	if e.dynamic != 0 {
		return e.dynamic
	}
	if e.static {
		return kmsg.ConfigSourceStaticBrokerConfig
	}
	return kmsg.ConfigSourceDefaultConfig
}

// synonyms are the entry's values in order of precedence, as Kafka lists
// them: the config file's, then the default.
func (e *brokerEntry) synonyms() []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	if e.dynamic == kmsg.ConfigSourceDynamicBrokerConfig {
		out = append(out, synonym(e.name, e.value, e.dynamic))
	}
	if e.clusterDefault != nil || e.dynamic == kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		v := e.clusterDefault
		if v == nil {
			v = e.value
		}
		out = append(out, synonym(e.name, v, kmsg.ConfigSourceDynamicDefaultBrokerConfig))
	}
	if e.static {
		out = append(out, synonym(e.name, e.value, kmsg.ConfigSourceStaticBrokerConfig))
	}
	if e.def != nil {
		out = append(out, synonym(e.name, e.def, kmsg.ConfigSourceDefaultConfig))
	}
	return out
}

func synonym(name string, v *string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, v, src
	return s
}

// brokerResourceError checks a broker resource name: empty (the cluster
// default) or this broker's id, as Kafka requires.
func (n *Node) brokerResourceError(name string) error {
	if name == "" {
		return nil
	}
	if id, err := strconv.ParseInt(name, 10, 32); err == nil && int32(id) == n.cfg.NodeID {
		return nil
	}
	return fmt.Errorf("unexpected broker id, expected %d or empty string, but received %q", n.cfg.NodeID, name)
}

// configAlterMu serializes the read-modify-write of topic overrides done by
// AlterConfigs and IncrementalAlterConfigs, so concurrent incremental
// changes to one topic do not lose each other's keys.
var configAlterMu sync.Mutex

// alterTopicConfigs replaces a topic's overrides with what change computes
// from the current ones, after validating every resulting key, unless
// validateOnly. change answers an error code and message to refuse. The
// logs run with the new configuration before it returns (registry.setConfigs
// persists the metadata and calls SetConfig). Does disk I/O: not on an
// event loop.
func (n *Node) alterTopicConfigs(name string, validateOnly bool,
	change func(old map[string]string) (map[string]string, int16, error)) (int16, *string) {
	if err := segstore.ValidateTopic(name); err != nil {
		return kerr.InvalidTopicException.Code, errMsg(err)
	}
	t := n.reg.get(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition.Code, errMsg(fmt.Errorf("%w: %q", errUnknownTopic, name))
	}
	configAlterMu.Lock()
	defer configAlterMu.Unlock()
	next, code, err := change(n.reg.configs(t))
	if err != nil {
		return code, errMsg(err)
	}
	for k, v := range next {
		if err := checkTopicConfig(k, &v); err != nil {
			return kerr.InvalidConfig.Code, errMsg(err)
		}
	}
	if validateOnly {
		return 0, nil
	}
	if err := n.setTopicConfigs(t, next); err != nil {
		code := errCode(err)
		if code == kerr.KafkaStorageError.Code || code == kerr.UnknownServerError.Code {
			n.log.Error("altering topic configs failed", "topic", name, "err", err)
		}
		return code, errMsg(err)
	}
	n.log.Info("altered topic configs", "topic", name, "configs", next)
	return 0, nil
}

// alterBrokerError answers a request to change broker configs that are not
// dynamic: the change is refused with INVALID_REQUEST (Kafka's answer for a
// config that cannot be updated dynamically); an empty change is a true
// no-op.
func (n *Node) alterBrokerError(name string, keys []string) (int16, *string) {
	if err := n.brokerResourceError(name); err != nil {
		return kerr.InvalidRequest.Code, errMsg(err)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	return kerr.InvalidRequest.Code, errMsg(fmt.Errorf("cannot update these configs dynamically: %s "+
		"(sluice's only dynamic broker configs are the replication throttle rates: change the broker's "+
		"configuration and restart it)",
		strings.Join(keys, ", ")))
}

// resourceKey is a config resource, to find duplicates in a request.
type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

func errDuplicateResource(typ kmsg.ConfigResourceType, name string) error {
	return fmt.Errorf("resource %s %q appears more than once in the request", typ, name)
}

func errUnsupportedResource(typ kmsg.ConfigResourceType) error {
	return fmt.Errorf("unsupported resource type %s (%d): sluice serves TOPIC (2) and BROKER (4)", typ, int8(typ))
}

// alterResource is one resource of an AlterConfigs or
// IncrementalAlterConfigs request, reduced to what both have in common.
type alterResource struct {
	typ  kmsg.ConfigResourceType
	name string
	keys []string // the config names, for the broker refusal
	// change computes a topic's new overrides from its current ones.
	change func(old map[string]string) (map[string]string, int16, error)
	// brokerChange computes a broker resource's new dynamic configs from
	// its current ones (nil: no change is possible).
	brokerChange func(old map[string]string) (map[string]string, int16, error)
	// the outcome
	code int16
	msg  *string
}

// alterResources applies (or with validateOnly, checks) each resource in
// order: a resource named twice is INVALID_REQUEST, topics change through
// alterTopicConfigs, brokers through alterBrokerConfigs, other types are
// INVALID_REQUEST. Disk I/O: call off the event loop.
func (n *Node) alterResources(rs []alterResource, validateOnly bool) []alterResource {
	seen := map[resourceKey]int{}
	for _, r := range rs {
		seen[resourceKey{r.typ, r.name}]++
	}
	for i := range rs {
		r := &rs[i]
		switch {
		case seen[resourceKey{r.typ, r.name}] > 1:
			r.code, r.msg = kerr.InvalidRequest.Code, errMsg(errDuplicateResource(r.typ, r.name))
		case r.typ == kmsg.ConfigResourceTypeTopic:
			r.code, r.msg = n.alterTopicConfigs(r.name, validateOnly, r.change)
		case r.typ == kmsg.ConfigResourceTypeBroker:
			r.code, r.msg = n.alterBrokerConfigs(r.name, validateOnly, r.keys, r.brokerChange)
		default:
			r.code, r.msg = kerr.InvalidRequest.Code, errMsg(errUnsupportedResource(r.typ))
		}
	}
	return rs
}
