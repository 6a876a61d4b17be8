package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicemq/sluice/node"
	"github.com/sluicemq/sluice/tuning"
)

func TestServeConfigNumaPinning(t *testing.T) {
	f := func(props string, want tuning.PinningMode, wantErr string) {
		t.Helper()
		c, err := resolveFile(t, props, nil)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "numa.pinning") {
				t.Errorf("%q: error %v, want one naming numa.pinning and %q", props, err, wantErr)
			}
			return
		}
		if err != nil || c.node.NumaPinning != want {
			t.Errorf("%q: %v, %v; want %q", props, c.node.NumaPinning, err, want)
		}
	}
	f("", tuning.PinningAuto, "")
	f("numa.pinning=auto", tuning.PinningAuto, "")
	f("numa.pinning=off", tuning.PinningOff, "")
	f("numa.pinning=OFF", tuning.PinningOff, "")
	f("numa.pinning=on", "", "want auto or off")
	f("numa.pinning=", "", "want auto or off")
}

// TestServePinning: `sluice serve` starts with numa.pinning=off and =auto,
// serves produce and consume, and answers GET /debug/shards on the metrics
// listener with the plan (auto) or the reason there is none (off).
func TestServePinning(t *testing.T) {
	f := func(mode string) {
		t.Helper()
		b := startBroker(t, t.TempDir(), "--override", "numa.pinning="+mode, "--override", "num.network.threads=2")
		createTopic(t, b.admin(t), 3, "pin")
		var recs []*kgo.Record
		for i := range 30 {
			recs = append(recs, &kgo.Record{Topic: "pin", Partition: int32(i % 3), Value: []byte{byte(i)}})
		}
		cl := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := cl.ProduceSync(testCtx(t, 30*time.Second), recs...).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", mode, err)
		}
		if got := len(consumeAll(t, b, "pin")); got != 30 {
			t.Errorf("%s: consumed %d records, want 30", mode, got)
		}
		c := http.Client{Timeout: 20 * time.Second}
		resp, err := c.Get("http://" + b.metrics + "/debug/shards")
		if err != nil {
			t.Fatalf("%s: GET /debug/shards: %v", mode, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v node.ShardsView
		if err := json.Unmarshal(body, &v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: GET /debug/shards: %s %v\n%s", mode, resp.Status, err, body)
		}
		if len(v.Partitions) != 3 || len(v.Committers) < 1 {
			t.Errorf("%s: /debug/shards lists %d partitions and %d committers:\n%s", mode, len(v.Partitions), len(v.Committers), body)
		}
		switch mode {
		case "off":
			if v.Pinning != "off" || v.Reason != "numa.pinning=off" || len(v.Shards) != 0 {
				t.Errorf("off: %s", body)
			}
		case "auto":
			// A host that refuses pinning falls back to off and says why;
			// this one must not need to.
			if v.Pinning != "auto" || len(v.Shards) != 2 || v.Plan == "" {
				t.Errorf("auto: %s", body)
			}
			for _, s := range v.Shards {
				if s.LoopTid == 0 {
					t.Errorf("auto: shard %d's loop not pinned: %s", s.ID, body)
				}
			}
			if line := b.findLog("numa pinning"); line == nil || line["plan"] != v.Plan {
				t.Errorf("auto: start-up log line %v does not give the plan %q", line, v.Plan)
			}
		}
	}
	f("off")
	f("auto")
}
