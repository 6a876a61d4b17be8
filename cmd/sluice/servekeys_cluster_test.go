package main

import (
	"testing"
	"time"
)

// unclean.leader.election.enable and
// replica.high.watermark.checkpoint.interval.ms reach node.ClusterConfig
// (from the file and from --override); without them the defaults hold.
func TestServeConfigClusterMiscKeys(t *testing.T) {
	const voters = "node.id=1\ncontroller.quorum.voters=1@127.0.0.1:19093\n"
	f := func(props string, args []string, wantUnclean bool, wantCkpt time.Duration) {
		t.Helper()
		c := mustResolve(t, voters+props, nil, args...)
		cc := c.node.Cluster
		if cc == nil {
			t.Fatalf("%q %v: no cluster config", props, args)
		}
		if cc.UncleanLeaderElection != wantUnclean || cc.HWCheckpointInterval != wantCkpt {
			t.Fatalf("%q %v: unclean %v checkpoint every %v; want %v, %v", props, args,
				cc.UncleanLeaderElection, cc.HWCheckpointInterval, wantUnclean, wantCkpt)
		}
	}
	f("", nil, false, 0) // 0: node applies its 5 s default
	f("unclean.leader.election.enable=true\n", nil, true, 0)
	f("unclean.leader.election.enable=TRUE\nreplica.high.watermark.checkpoint.interval.ms=250\n", nil, true, 250*time.Millisecond)
	f("unclean.leader.election.enable=true\n", []string{"--override", "unclean.leader.election.enable=false"}, false, 0)
	f("", []string{"--override", "replica.high.watermark.checkpoint.interval.ms=60000"}, false, time.Minute)

	for _, bad := range []string{"unclean.leader.election.enable=yes", "replica.high.watermark.checkpoint.interval.ms=0"} {
		if _, err := resolveFile(t, voters+bad+"\n", nil); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
