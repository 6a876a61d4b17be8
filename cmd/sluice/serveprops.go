package main

import (
	"fmt"
	"strconv"
	"strings"
)

// propEntry is one key=value pair of a properties file; line is where its
// logical line starts (1-based).
type propEntry struct {
	key, value string
	line       int
}

// parseProperties reads Java properties syntax, as Kafka's server.properties
// uses it: '#' and '!' comment lines, key=value, key:value or "key value",
// a trailing odd number of backslashes continues the line (the next line's
// leading blanks dropped), and the escapes \t \n \r \f \uXXXX and \<char>.
// Later duplicates win, as in java.util.Properties; the caller keeps the
// last.
func parseProperties(text string) ([]propEntry, error) {
	var out []propEntry
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for continues(line) && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		if continues(line) { // a final backslash at end of file is dropped
			line = line[:len(line)-1]
		}
		key, rest := splitKey(line)
		k, err := unescape(key)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		v, err := unescape(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", start, k, err)
		}
		out = append(out, propEntry{key: k, value: v, line: start})
	}
	return out, nil
}

// continues reports whether line ends in an odd number of backslashes.
func continues(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKey cuts a logical line at the first unescaped '=', ':' or blank;
// blanks around the separator belong to neither side.
func splitKey(line string) (key, value string) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	key, rest := line[:end], strings.TrimLeft(line[end:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	return key, rest
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\uXXXX escape")
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 32)
			if err != nil {
				return "", fmt.Errorf("malformed \\uXXXX escape")
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// Kafka broker properties sluice accepts in a file but does not use: a
// stock Kafka server.properties loads with one warning line naming them.
// Any other unknown key is an error, so a typo cannot pass for a setting.
//
// ignoredPrefixes are whole namespaces sluice has nothing of (security,
// replication, the new consumer group protocol, share groups,
// transactions, KRaft, tiered storage);
// none of them is a prefix of a key sluice implements, so a
// misspelled sluice key cannot hide in one. Everything else is listed by
// exact name.
var ignoredPrefixes = []string{
	"zookeeper.", "ssl.", "sasl.", "group.consumer.", "group.share.",
	"group.coordinator.", "transaction.",
	"listener.name.", "share.", "metadata.", "remote.log.",
	"confluent.", "password.encoder.", "delegation.token.",
}

var ignoredKeys = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`
		broker.id.generation.enable reserved.broker.max.id node.id.generation.enable
		initial.broker.registration.timeout.ms
		controller.quorum.bootstrap.servers controller.quorum.election.timeout.ms controller.quorum.fetch.timeout.ms
		controller.quorum.election.backoff.max.ms controller.quorum.append.linger.ms
		controller.quorum.request.timeout.ms controller.quorum.retry.backoff.ms controller.quorum.auto.join.enable
		replica.socket.timeout.ms replica.socket.receive.buffer.bytes replica.fetch.min.bytes
		replica.selector.class
		eligible.leader.replicas.enable unstable.api.versions.enable unstable.feature.versions.enable
		early.start.listeners security.inter.broker.protocol security.providers inter.broker.protocol.version
		controller.socket.timeout.ms controller.quota.window.num controller.quota.window.size.seconds
		controller.performance.sample.period.ms controller.performance.always.log.threshold.ms
		controlled.shutdown.enable controlled.shutdown.max.retries controlled.shutdown.retry.backoff.ms

		num.io.threads num.replica.fetchers num.replica.alter.log.dirs.threads num.recovery.threads.per.data.dir
		background.threads request.timeout.ms queued.max.request.bytes
		socket.send.buffer.bytes socket.receive.buffer.bytes socket.listen.backlog.size
		socket.connection.setup.timeout.ms socket.connection.setup.timeout.max.ms
		connections.max.idle.ms connections.max.reauth.ms
		max.connections max.connections.per.ip max.connections.per.ip.overrides max.connection.creation.rate

		log.retention.check.interval.ms log.segment.delete.delay.ms log.preallocate
		log.flush.scheduler.interval.ms log.flush.start.offset.checkpoint.interval.ms
		log.message.format.version log.message.downconversion.enable
		log.message.timestamp.difference.max.ms log.message.timestamp.before.max.ms log.message.timestamp.after.max.ms
		log.roll.jitter.ms log.roll.jitter.hours log.index.size.max.bytes log.dir.failure.timeout.ms
		log.local.retention.ms log.local.retention.bytes log.initial.task.delay.ms
		log.cleaner.threads log.cleaner.io.buffer.size log.cleaner.io.buffer.load.factor
		log.cleaner.io.max.bytes.per.second
		compression.type compression.gzip.level compression.lz4.level compression.zstd.level
		leader.imbalance.per.broker.percentage

		offsets.topic.replication.factor offsets.topic.compression.codec offsets.load.buffer.size
		offsets.commit.timeout.ms offsets.commit.required.acks
		max.incremental.fetch.session.cache.slots
		fetch.max.bytes fetch.purgatory.purge.interval.requests producer.purgatory.purge.interval.requests
		delete.records.purgatory.purge.interval.requests
		transactional.id.expiration.ms

		authorizer.class.name super.users principal.builder.class allow.everyone.if.no.acl.found
		create.topic.policy.class.name alter.config.policy.class.name config.providers
		quota.window.num quota.window.size.seconds quota.consumer.default quota.producer.default
		client.quota.callback.class replication.quota.window.num replication.quota.window.size.seconds
		alter.log.dirs.replication.quota.window.num alter.log.dirs.replication.quota.window.size.seconds

		metric.reporters metrics.num.samples metrics.sample.window.ms metrics.recording.level
		auto.include.jmx.reporter kafka.metrics.polling.interval.secs kafka.metrics.reporters
		telemetry.max.bytes
	`) {
		ignoredKeys[k] = true
	}
}

// ignoredKey reports whether name is a Kafka broker property sluice
// tolerates without using it. (max.incremental.fetch.session.cache.slots:
// sluice's fetch session cache has Kafka's default 1000 slots, fixed.)
func ignoredKey(name string) bool {
	if ignoredKeys[name] {
		return true
	}
	for _, p := range ignoredPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
