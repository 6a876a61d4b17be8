package perf

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicemq/sluice/node"
)

// The same independent checks as kfake_test.go, against a real sluice
// broker: one invocation pattern for both, counts and bytes taken through
// kadm, a separate kgo consumer and the segment files on disk.

func startSluice(t *testing.T, dir string) []string {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.Logger = slog.New(slog.NewTextHandler(discardWriter{}, nil))
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return []string{n.Advertised()}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestSluiceCountsAndBytesMatch(t *testing.T) {
	dir := t.TempDir()
	addrs := startSluice(t, dir)

	w := testWorkload(addrs, "agree", ModeProduce)
	w.Records, w.RecordSize, w.Producers = 4000, 1024, 2
	res := runOK(t, w)
	if res.Records != 4000 || res.Sent != 4000 {
		t.Fatalf("produce reported %d acknowledged / %d sent, want 4000", res.Records, res.Sent)
	}
	if got := endOffsetSum(t, addrs, "agree"); got != res.Records {
		t.Fatalf("broker holds %d records, produce reported %d", got, res.Records)
	}
	if n, b := consumeAll(t, addrs, "agree", 4000); n != 4000 || b != res.Bytes {
		t.Fatalf("independent consumer read %d records / %d bytes, produce reported %d / %d", n, b, res.Records, res.Bytes)
	}
	checkDiskRatio(t, dir, ".log", "/agree-", res.Bytes)

	w.Mode, w.Consumers, w.CreateTopic = ModeConsume, 2, false
	if cres := runOK(t, w); cres.Records != 4000 || cres.Bytes != res.Bytes {
		t.Fatalf("consume: %d records / %d bytes, want 4000 / %d", cres.Records, cres.Bytes, res.Bytes)
	}

	raw := testWorkload(addrs, "agree-raw", ModeRaw)
	raw.Records = 5000
	rres := runOK(t, raw)
	if got := endOffsetSum(t, addrs, "agree-raw"); got != rres.Records || rres.Records < 5000 {
		t.Fatalf("raw: broker holds %d records, raw reported %d (asked 5000)", got, rres.Records)
	}
}
