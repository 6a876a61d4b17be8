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
var ignoredPrefixes = []string{
	"zookeeper.", "controller.", "inter.broker.", "ssl.", "sasl.", "group.", "offsets.",
	"transaction.", "transactional.id.", "listener.name.", "share.", "security.", "replica.",
	"log.cleaner.", "leader.imbalance.", "metadata.", "remote.log.", "log.local.retention.",
	"quota.", "delegation.token.", "confluent.", "kafka.metrics.", "max.connection",
	"connections.max.", "producer.id.", "fetch.", "producer.purgatory.", "client.quota.",
	"log.message.timestamp.", "num.recovery.threads.", "create.topic.policy.", "alter.config.policy.",
}

var ignoredKeys = map[string]bool{
	"process.roles": true, "listener.security.protocol.map": true, "num.io.threads": true,
	"num.replica.fetchers": true, "num.replica.alter.log.dirs.threads": true,
	"socket.send.buffer.bytes": true, "socket.receive.buffer.bytes": true, "socket.listen.backlog.size": true,
	"socket.connection.setup.timeout.ms": true, "socket.connection.setup.timeout.max.ms": true,
	"log.retention.check.interval.ms": true, "log.segment.delete.delay.ms": true, "log.preallocate": true,
	"log.flush.scheduler.interval.ms": true, "log.flush.start.offset.checkpoint.interval.ms": true,
	"log.message.format.version": true, "log.message.downconversion.enable": true,
	"log.roll.jitter.ms": true, "log.roll.jitter.hours": true, "log.index.size.max.bytes": true,
	"log.dir.failure.timeout.ms": true, "compression.type": true, "unclean.leader.election.enable": true,
	"auto.leader.rebalance.enable": true, "background.threads": true, "request.timeout.ms": true,
	"queued.max.request.bytes": true, "early.start.listeners": true, "authorizer.class.name": true,
	"super.users": true, "principal.builder.class": true, "allow.everyone.if.no.acl.found": true,
	"metric.reporters": true, "metrics.num.samples": true, "metrics.sample.window.ms": true,
	"metrics.recording.level": true, "broker.id.generation.enable": true, "reserved.broker.max.id": true,
	"initial.broker.registration.timeout.ms": true, "broker.heartbeat.interval.ms": true,
	"broker.session.timeout.ms": true, "node.id.generation.enable": true, "eligible.leader.replicas.enable": true,
	"auto.include.jmx.reporter": true,
}

// ignoredKey reports whether name is a Kafka broker property sluice
// tolerates without using it.
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
