package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestClusterKcatMetadata: `kcat -L` against each node of a 3-process
// cluster shows the same brokers, topics, leaders, replicas and ISRs once
// the nodes' views converge (each node names itself as the controller, as
// sluice answers Metadata's ControllerID with the broker asked, so that mark
// and the "from broker" line are left out of the comparison), and what it
// shows is right: 3 brokers at their addresses, every partition led by one
// of its replicas with all replicas in sync.
func TestClusterKcatMetadata(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed")
	}
	c := startProcCluster(t, 3, clusterArgs...)
	adm := kadm.NewClient(c.client())
	ctx := testCtx(t, 60*time.Second)
	for _, tc := range []struct {
		name      string
		parts, rf int
	}{{"kcat-a", 3, 3}, {"kcat-b", 2, 2}} {
		if res, err := adm.CreateTopic(ctx, int32(tc.parts), int16(tc.rf), nil, tc.name); err != nil || res.Err != nil {
			t.Fatalf("create %s: %v %v", tc.name, err, res.Err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var views []string
	for {
		views = views[:0]
		for i := range c.nodes {
			views = append(views, kcatView(t, c.addr(i)))
		}
		same := true
		for _, v := range views[1:] {
			same = same && v == views[0]
		}
		if same && kcatComplete(views[0]) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kcat views did not converge to a complete view within 10s (%s):\n%s", kcatComplete(views[0]),
				strings.Join(views, "\n----\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range c.nodes {
		if want := fmt.Sprintf("broker %d at %s", i+1, c.addr(i)); !strings.Contains(views[0], want) {
			t.Errorf("kcat view lacks %q:\n%s", want, views[0])
		}
	}
	for _, want := range []string{"3 brokers:", `topic "kcat-a" with 3 partitions:`, `topic "kcat-b" with 2 partitions:`} {
		if !strings.Contains(views[0], want) {
			t.Errorf("kcat view lacks %q:\n%s", want, views[0])
		}
	}
	t.Logf("kcat -L, the same from every node:\n%s", views[0])
}

// kcatView runs `kcat -L` against addr and normalizes its output: the
// "from broker" line and the controller mark dropped, topics sorted by name.
func kcatView(t *testing.T, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-L", "-b", addr, "-m", "5").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("kcat -L -b %s: %v\n%s", addr, err, out)
	}
	var head []string
	var topics [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "Metadata for"):
		case strings.HasPrefix(line, "  topic "):
			topics = append(topics, []string{line})
		case len(topics) > 0:
			topics[len(topics)-1] = append(topics[len(topics)-1], line)
		default:
			head = append(head, strings.TrimSuffix(line, " (controller)"))
		}
	}
	slices.SortFunc(topics, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	for _, tp := range topics {
		head = append(head, tp...)
	}
	return strings.Join(head, "\n")
}

var kcatPartition = regexp.MustCompile(`^    partition (\d+), leader (-?\d+), replicas: ([\d,]*), isrs: ([\d,]*)`)

// kcatComplete says what is not yet settled in a normalized view (a
// partition without a leader among its replicas, or with replicas out of
// sync, a kcat error), or "".
func kcatComplete(view string) string {
	n := 0
	for _, line := range strings.Split(view, "\n") {
		if strings.HasPrefix(line, "kcat -L") || strings.Contains(line, "Error") {
			return line
		}
		m := kcatPartition.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		replicas, isr := strings.Split(m[3], ","), strings.Split(m[4], ",")
		slices.Sort(replicas)
		slices.Sort(isr)
		if !slices.Contains(replicas, m[2]) || !slices.Equal(replicas, isr) {
			return strings.TrimSpace(line)
		}
	}
	if n != 5 {
		return fmt.Sprintf("%d partitions listed, want 5", n)
	}
	return ""
}
