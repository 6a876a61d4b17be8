package node

import (
	"testing"
	"time"
)

func TestClusterConfigSessionGraces(t *testing.T) {
	// The grace a new active controller gives broker-only nodes covers a heartbeat hung on the old controller
	// (heartbeatTimeout); voters' brokers follow their own raft and get max(3 intervals, 1 s), never more than
	// the other grace.
	f := func(interval, session, voterGrace, wantGrace, wantVoter time.Duration) {
		t.Helper()
		c := DefaultClusterConfig(map[int32]string{1: "127.0.0.1:9093"})
		c.HeartbeatInterval, c.SessionTimeout, c.VoterSessionGrace = interval, session, voterGrace
		if err := c.validate(1); err != nil {
			t.Fatal(err)
		}
		if c.SessionGrace != wantGrace || c.VoterSessionGrace != wantVoter {
			t.Fatalf("interval %v session %v voter grace %v: graces %v / %v, want %v / %v", interval, session, voterGrace,
				c.SessionGrace, c.VoterSessionGrace, wantGrace, wantVoter)
		}
	}
	ms := time.Millisecond
	f(250*ms, 9*time.Second, 0, 2250*ms, time.Second) // defaults
	f(250*ms, 3*time.Second, 0, 2250*ms, time.Second) // the cluster tests' session
	f(time.Second, 9*time.Second, 0, 9*time.Second, 3*time.Second)
	f(2*time.Second, 3*time.Second, 0, 3*time.Second, 3*time.Second) // Kafka's interval: both capped by the session
	f(250*ms, 9*time.Second, 400*ms, 2250*ms, 400*ms)                // set explicitly
}
