package node

import (
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/ctrl"
)

// TestThrottleQuotaMath drives byteQuota with a fake clock: a full burst to
// start, debt after an overshoot, the wait it implies, the refill cap,
// rate 0, and going back to unlimited.
func TestThrottleQuotaMath(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newByteQuota(func() time.Time { return now })
	ready := func(want time.Duration) {
		t.Helper()
		at := q.readyAt()
		switch {
		case want == 0 && !at.IsZero():
			t.Fatalf("readyAt %v after now, want ready", at.Sub(now))
		case want != 0 && (at.IsZero() || at.Sub(now) != want):
			t.Fatalf("readyAt in %v, want %v", at.Sub(now), want)
		}
	}
	q.record(1 << 30) // unlimited: nothing is charged
	ready(0)
	q.setRate(1000) // 1000 B/s: a burst of 200 B
	ready(0)
	q.record(200) // the burst used up: balance 0, still allowed
	ready(0)
	q.record(300) // 300 B of debt: 300 ms
	ready(300 * time.Millisecond)
	now = now.Add(100 * time.Millisecond)
	ready(200 * time.Millisecond)
	now = now.Add(200 * time.Millisecond)
	ready(0)
	// Idle for an hour: only the burst (200 B) is saved up.
	now = now.Add(time.Hour)
	q.record(700)
	ready(500 * time.Millisecond)
	// Sustained: 10 s of fetches of 100 B whenever allowed pass about
	// rate*10s + burst bytes.
	now = now.Add(500 * time.Millisecond)
	var passed int64
	end := now.Add(10 * time.Second)
	for now.Before(end) {
		if at := q.readyAt(); !at.IsZero() {
			now = at
			continue
		}
		q.record(100)
		passed += 100
	}
	if passed < 10000 || passed > 10000+200+100 {
		t.Fatalf("%d B passed in 10 s at 1000 B/s", passed)
	}
	// A lower rate keeps the debt; rate 0 lets nothing through.
	q.setRate(0)
	ready(quotaRecheck)
	now = now.Add(time.Hour)
	ready(quotaRecheck)
	q.setRate(math.MaxInt64)
	ready(0)
	q.setRate(-1) // unlimited too
	ready(0)
}

func TestThrottleReplicasConfigValidation(t *testing.T) {
	f := func(v string, ok bool, has map[[2]int32]bool) {
		t.Helper()
		err := checkTopicConfig(followerThrottledReplicas, &v)
		if err2 := checkTopicConfig(leaderThrottledReplicas, &v); (err == nil) != (err2 == nil) {
			t.Fatalf("%q: leader %v, follower %v", v, err2, err)
		}
		if (err == nil) != ok {
			t.Fatalf("%q: err %v, want ok=%v", v, err, ok)
		}
		if !ok {
			return
		}
		tr, _ := parseThrottledReplicas(v)
		for pb, want := range has {
			if got := tr.has(pb[0], pb[1]); got != want {
				t.Fatalf("%q: has(%d, %d) = %v", v, pb[0], pb[1], got)
			}
		}
	}
	f("", true, map[[2]int32]bool{{0, 1}: false})
	f("*", true, map[[2]int32]bool{{0, 1}: true, {7, 9}: true})
	f(" * ", true, map[[2]int32]bool{{3, 3}: true})
	f("0:1,0:2, 1:3", true, map[[2]int32]bool{{0, 1}: true, {0, 2}: true, {1, 3}: true, {1, 1}: false, {2, 3}: false})
	f("0:1,,", true, map[[2]int32]bool{{0, 1}: true})
	f("0", false, nil)
	f("0:", false, nil)
	f(":1", false, nil)
	f("a:1", false, nil)
	f("-1:1", false, nil)
	f("+1:1", false, nil)
	f("0:1,*", false, nil)
	f("0:99999999999", false, nil)
	f("0:1:2", false, nil)
}

func TestThrottleBrokerConfigOps(t *testing.T) {
	set := func(name, v string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value, c.Op = name, &v, kmsg.IncrementalAlterConfigOpSet
		return c
	}
	del := func(name string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op = name, kmsg.IncrementalAlterConfigOpDelete
		return c
	}
	appendOp := set(leaderThrottledRate, "1")
	appendOp.Op = kmsg.IncrementalAlterConfigOpAppend
	f := func(old map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig, want map[string]string, code int16) {
		t.Helper()
		got, c, err := brokerConfigOps(old, ops)
		if c != code || (err != nil) != (code != 0) {
			t.Fatalf("code %v err %v, want %v", kerr.ErrorForCode(c), err, kerr.ErrorForCode(code))
		}
		if code == 0 && (len(got) != len(want) || !mapsEqual(got, want)) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	f(nil, nil, map[string]string{}, 0)
	f(nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{set(followerThrottledRate, "5")},
		map[string]string{followerThrottledRate: "5"}, 0)
	f(map[string]string{followerThrottledRate: "5", leaderThrottledRate: "7"},
		[]kmsg.IncrementalAlterConfigsRequestResourceConfig{del(followerThrottledRate)},
		map[string]string{leaderThrottledRate: "7"}, 0)
	f(nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{appendOp}, nil, kerr.InvalidConfig.Code)
	f(nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{set(leaderThrottledRate, "1"), del(leaderThrottledRate)},
		nil, kerr.InvalidRequest.Code)

	for _, c := range []struct {
		v  string
		ok bool
	}{{"0", true}, {"2000000", true}, {"9223372036854775807", true}, {"-1", false}, {"1.5", false}, {"", false}} {
		if err := checkThrottleRate(c.v); (err == nil) != c.ok {
			t.Errorf("rate %q: %v", c.v, err)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return len(a) == len(b)
}

// TestThrottleView: which partitions each side throttles for broker 2.
func TestThrottleView(t *testing.T) {
	s := ctrl.NewState()
	s.Topics["a"] = &ctrl.Topic{Name: "a", Configs: map[string]string{
		followerThrottledReplicas: "0:2,1:3", leaderThrottledReplicas: "*"},
		Partitions: []ctrl.Partition{{Replicas: []int32{1, 2}, ISR: []int32{1}}, {Replicas: []int32{2, 3}, ISR: []int32{2, 3}}}}
	s.Topics["b"] = &ctrl.Topic{Name: "b", Configs: map[string]string{followerThrottledReplicas: "0:2"},
		Partitions: []ctrl.Partition{{Replicas: []int32{1, 2}, ISR: []int32{1, 2}}}}
	s.Topics["c"] = &ctrl.Topic{Name: "c", Partitions: []ctrl.Partition{{Replicas: []int32{1, 2}, ISR: []int32{1}}}}
	r := newReplThrottle(2, func() *ctrl.State { return s }, nil)
	if v := r.current(); v != nil {
		t.Fatalf("no rate set, view %+v", v)
	}
	s = s.Clone()
	s.BrokerConfigs[""] = map[string]string{followerThrottledRate: "100", leaderThrottledRate: "1"}
	s.BrokerConfigs["2"] = map[string]string{leaderThrottledRate: "200"}
	v := r.current()
	if v == nil {
		t.Fatal("no view")
	}
	if r.follower.rate != 100 || r.leader.rate != 200 {
		t.Fatalf("rates: follower %d leader %d", r.follower.rate, r.leader.rate)
	}
	f := func(what string, got, want bool) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %v", what, got)
		}
	}
	f("follower a-0 (listed, out of ISR)", v.followerThrottled("a", 0), true)
	f("follower a-1 (listed for 3 only)", v.followerThrottled("a", 1), false)
	f("follower b-0 (in ISR)", v.followerThrottled("b", 0), false)
	f("follower c-0 (not listed)", v.followerThrottled("c", 0), false)
	f("leader a-1 to 3 (in ISR)", v.leaderThrottled("a", 1, 3), false)
	f("leader a-1 to 4 (out of ISR)", v.leaderThrottled("a", 1, 4), true)
	f("leader c-0 (not listed)", v.leaderThrottled("c", 0, 2), false)
}
