package ctrl

import (
	"slices"
	"testing"
)

// The static unclean.leader.election.enable (server.properties, Config.
// UncleanLeaderElection) is the last fallback of the elections: the topic's config, then the cluster-wide
// dynamic default, win over it.
func TestStaticUncleanLeaderElection(t *testing.T) {
	// Leader 1 alone in the ISR; 2 and 3 live but out of sync.
	p := Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 7}
	f := func(static bool, topicCfg, clusterCfg string, wantLeader int32) {
		t.Helper()
		s := stateWith(t, []int32{1, 2, 3}, nil, false, p)
		s.uncleanDefault = static
		if s.Clone().uncleanDefault != static {
			t.Fatal("Clone lost the static default")
		}
		if topicCfg != "" {
			s.Topics["t"].Configs = map[string]string{"unclean.leader.election.enable": topicCfg}
		}
		if clusterCfg != "" {
			s.BrokerConfigs[""] = map[string]string{"unclean.leader.election.enable": clusterCfg}
		}
		got := FenceChanges(s, 1)
		if len(got) != 1 || got[0].Leader != wantLeader {
			t.Fatalf("static %v topic %q cluster %q: changes %+v, want leader %d", static, topicCfg, clusterCfg, got, wantLeader)
		}
		if wantLeader != NoLeader && !slices.Equal(got[0].ISR, []int32{wantLeader}) {
			t.Fatalf("unclean election kept ISR %v", got[0].ISR)
		}
		// The same rule elects a leaderless partition once it may (OfflineChanges).
		off := p
		off.Leader = NoLeader
		s = stateWith(t, []int32{1, 2, 3}, []int32{1}, false, off)
		s.uncleanDefault = static
		if topicCfg != "" {
			s.Topics["t"].Configs = map[string]string{"unclean.leader.election.enable": topicCfg}
		}
		if clusterCfg != "" {
			s.BrokerConfigs[""] = map[string]string{"unclean.leader.election.enable": clusterCfg}
		}
		oc := OfflineChanges(s)
		if elected := len(oc) == 1 && oc[0].Leader == 2; elected != (wantLeader == 2) {
			t.Fatalf("static %v topic %q cluster %q: offline changes %+v", static, topicCfg, clusterCfg, oc)
		}
	}
	f(false, "", "", NoLeader)
	f(true, "", "", 2) // the static default alone allows it
	f(true, "false", "", NoLeader)
	f(true, "", "false", NoLeader)
	f(false, "", "true", 2)
	f(false, "true", "false", 2)
	f(true, "true", "", 2)
}
