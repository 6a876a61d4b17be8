package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestClusterControllerStall: a hung active controller (SIGSTOP for 7 s,
// longer than the 3 s session timeout) is replaced by a raft election, and
// the brokers that are alive must not be fenced on the way: their
// heartbeats, stuck on the stopped controller, have to reach the new one
// within the session it grants them. Kafka's new active controller starts
// every broker with a full session for that reason. Meanwhile each live
// node's Metadata is polled; a live node missing from a live node's broker
// list was fenced. The stopped node itself is fenced (its leaderships
// move), and after SIGCONT the cluster is whole again.
// SLUICE_CLUSTER_STALL_RUNS sets the number of stops (default 2).
func TestClusterControllerStall(t *testing.T) {
	runs := 2
	if v, err := strconv.Atoi(os.Getenv("SLUICE_CLUSTER_STALL_RUNS")); err == nil && v > 0 {
		runs = v
	}
	// The stop outlasts the 3 s session timeout with room for the raft
	// election before it, so the stopped node is fenced while it lasts.
	const topic, parts, stop = "stall", 6, 7 * time.Second
	c := startProcCluster(t, 3, clusterArgs...)
	c.createTopicRF(kadm.NewClient(c.client()), topic, parts, 2)
	for run := 1; run <= runs; run++ {
		a := c.activeController()
		c.pause(a)
		start := time.Now()
		fenced := map[int]string{} // live node -> first sighting of it fenced
		stoppedFenced := time.Duration(0)
		for time.Since(start) < stop {
			for i := range c.nodes {
				if i == a {
					continue
				}
				v, err := c.metaFrom(i, time.Second)
				if err != nil {
					continue // a broker may hold requests while its metadata catches up
				}
				for j := range c.nodes {
					if _, seen := fenced[j]; j != a && !seen && !slices.Contains(v.brokers, int32(j+1)) {
						fenced[j] = fmt.Sprintf("node %d fenced: node %d lists brokers %v %v after the stop", j+1, i+1, v.brokers,
							time.Since(start).Round(time.Millisecond))
					}
				}
				if stoppedFenced == 0 && !slices.Contains(v.brokers, int32(a+1)) {
					stoppedFenced = time.Since(start)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		c.resume(a)
		if len(fenced) > 0 {
			var seen []string
			for _, f := range fenced {
				seen = append(seen, f)
			}
			slices.Sort(seen)
			t.Errorf("run %d: SIGSTOP of active controller node %d fenced live brokers: %s", run, a+1, strings.Join(seen, "; "))
		}
		if stoppedFenced == 0 {
			t.Errorf("run %d: stopped node %d was not fenced within %v", run, a+1, stop)
		}
		c.waitHealthy(60*time.Second, parts, topic)
		t.Logf("run %d: active controller node %d stopped %v; it was fenced after %v; live brokers fenced: %d",
			run, a+1, stop, stoppedFenced.Round(time.Millisecond), len(fenced))
	}
}
