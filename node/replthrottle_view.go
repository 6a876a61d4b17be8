package node

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/ctrl"
)

// The throttle settings as one broker reads them from the metadata it
// applied (replthrottle.go has the rules).

// throttledReplicas is a parsed *.replication.throttled.replicas value.
type throttledReplicas struct {
	all   bool              // "*"
	parts map[int32][]int32 // partition -> the brokers listed with it
}

// parseThrottledReplicas parses Kafka's format: "*", or comma-separated
// partition:broker entries (blanks around items ignored, empty items and
// an empty value allowed), both numbers non-negative 32-bit integers.
func parseThrottledReplicas(v string) (throttledReplicas, error) {
	v = strings.TrimSpace(v)
	if v == "*" {
		return throttledReplicas{all: true}, nil
	}
	var t throttledReplicas
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ps, bs, ok := strings.Cut(item, ":")
		p, perr := parseID(ps)
		b, berr := parseID(bs)
		if !ok || perr != nil || berr != nil {
			return throttledReplicas{}, fmt.Errorf("entry %q is not partition:broker (or use \"*\" alone for all replicas)", item)
		}
		if t.parts == nil {
			t.parts = map[int32][]int32{}
		}
		t.parts[p] = append(t.parts[p], b)
	}
	return t, nil
}

// parseID parses a non-negative int32 written in plain decimal digits.
func parseID(s string) (int32, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a non-negative integer: %q", s)
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return int32(n), err
}

func checkThrottledReplicas(v string) error {
	_, err := parseThrottledReplicas(v)
	return err
}

// has reports whether the list throttles partition on broker.
func (t throttledReplicas) has(partition, broker int32) bool {
	return t.all || slices.Contains(t.parts[partition], broker)
}

// namesBroker reports whether any entry concerns broker.
func (t throttledReplicas) namesBroker(broker int32) bool {
	if t.all {
		return true
	}
	for _, bs := range t.parts {
		if slices.Contains(bs, broker) {
			return true
		}
	}
	return false
}

// checkThrottleRate validates a *.replication.throttled.rate value: a long
// of at least 0 (0 stops throttled replication; Long.MAX_VALUE is none).
func checkThrottleRate(v string) error {
	return intRange(0, math.MaxInt64)(v)
}

// throttleRate is a broker's effective rate for key: its own dynamic value,
// else the cluster-wide default, else unlimited.
func throttleRate(s *ctrl.State, broker int32, key string) int64 {
	for _, name := range []string{strconv.Itoa(int(broker)), ""} {
		if v, ok := s.BrokerConfigs[name][key]; ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
				return n
			}
		}
	}
	return math.MaxInt64
}

// replThrottle is one broker's replication throttle: its two quotas and
// the throttled partitions of the metadata it last looked at.
//
// Concurrency: safe for concurrent use.
type replThrottle struct {
	self     int32
	state    func() *ctrl.State // the applied metadata (nil: none yet)
	leader   *byteQuota
	follower *byteQuota

	mu  sync.Mutex // serializes rebuilds
	cur atomic.Pointer[throttleView]
}

// throttleView is the throttle settings of one metadata state (immutable).
type throttleView struct {
	r        *replThrottle
	s        *ctrl.State
	leader   map[string]throttledReplicas // topics whose list names this broker
	follower map[string]throttledReplicas
}

func newReplThrottle(self int32, state func() *ctrl.State, now func() time.Time) *replThrottle {
	return &replThrottle{self: self, state: state, leader: newByteQuota(now), follower: newByteQuota(now)}
}

// replThrottle is the broker's throttle; nil standalone or on a
// controller-only node.
func (n *Node) replThrottle() *replThrottle {
	if c := n.cluster; c != nil && c.fetch != nil {
		return c.fetch.cfg.throttle
	}
	return nil
}

// current returns the view of the metadata applied now, rebuilding it (and
// setting the quotas' rates) when the metadata changed. Nil when nothing
// is throttled, so callers skip all checks. A nil r is allowed.
func (r *replThrottle) current() *throttleView {
	if r == nil || r.state == nil {
		return nil
	}
	s := r.state()
	if s == nil {
		return nil
	}
	v := r.cur.Load()
	if v == nil || v.s != s {
		r.mu.Lock()
		if v = r.cur.Load(); v == nil || v.s != s {
			v = r.build(s)
			r.cur.Store(v)
		}
		r.mu.Unlock()
	}
	if len(v.leader) == 0 && len(v.follower) == 0 {
		return nil
	}
	return v
}

func (r *replThrottle) build(s *ctrl.State) *throttleView {
	r.leader.setRate(throttleRate(s, r.self, leaderThrottledRate))
	r.follower.setRate(throttleRate(s, r.self, followerThrottledRate))
	v := &throttleView{r: r, s: s}
	add := func(m *map[string]throttledReplicas, topic, val string) {
		t, err := parseThrottledReplicas(val)
		if err != nil || !t.namesBroker(r.self) {
			return // validated when set; an unparsable value throttles nothing
		}
		if *m == nil {
			*m = map[string]throttledReplicas{}
		}
		(*m)[topic] = t
	}
	for name, t := range s.Topics {
		if val, ok := t.Configs[leaderThrottledReplicas]; ok && !r.leader.unlimited() {
			add(&v.leader, name, val)
		}
		if val, ok := t.Configs[followerThrottledReplicas]; ok && !r.follower.unlimited() {
			add(&v.follower, name, val)
		}
	}
	return v
}

// inISR reports whether broker is in the committed ISR of the partition.
func (v *throttleView) inISR(topic string, partition, broker int32) bool {
	t := v.s.Topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return false
	}
	return slices.Contains(t.Partitions[partition].ISR, broker)
}

// followerThrottled reports whether this broker's fetches of the partition
// count against (and wait for) its follower quota.
func (v *throttleView) followerThrottled(topic string, partition int32) bool {
	t, ok := v.follower[topic]
	return ok && t.has(partition, v.r.self) && !v.inISR(topic, partition, v.r.self)
}

// leaderThrottled reports whether replica's fetches of the partition this
// broker leads count against (and wait for) its leader quota.
func (v *throttleView) leaderThrottled(topic string, partition, replica int32) bool {
	t, ok := v.leader[topic]
	return ok && t.has(partition, v.r.self) && !v.inISR(topic, partition, replica)
}
