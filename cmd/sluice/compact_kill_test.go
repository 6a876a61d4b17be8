package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestServeKill9WhileCompacting: a compacted topic with small segments
// under keyed load (values and tombstones), the cleaner running all the
// time (log.cleaner.backoff.ms=1, min.cleanable.dirty.ratio=0), and a
// kill -9 once several cleaning passes have run. After each restart the
// topic reads back with offsets rising, every record one that was
// produced, and no key regressed: for each key, the records seen come in
// the order they were produced, and the last one is at least as new as the
// newest acknowledged one (and as the newest seen after the previous
// restart). SLUICE_COMPACT_KILL_CYCLES sets the number of kills (default 2).
func TestServeKill9WhileCompacting(t *testing.T) {
	cycles := 2
	if v, err := strconv.Atoi(os.Getenv("SLUICE_COMPACT_KILL_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	const topic = "ckill"
	dir := t.TempDir()
	args := []string{"--override", "log.cleaner.backoff.ms=1", "--override", "log.flush.offset.checkpoint.interval.ms=20"}
	s := &compactState{acked: map[string]int{}, seen: map[string]int{}}
	for c := 0; c < cycles; c++ {
		b := startBroker(t, dir, args...)
		if c == 0 {
			resp, err := b.admin(t).CreateTopics(testCtx(t, 60*time.Second), 1, 1, map[string]*string{
				"cleanup.policy":            kadm.StringPtr("compact"),
				"segment.bytes":             kadm.StringPtr("16384"),
				"min.cleanable.dirty.ratio": kadm.StringPtr("0"),
			}, topic)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				t.Fatal(err)
			}
		} else {
			s.verify(t, b, topic, c)
		}
		s.loadAndKill(t, b, topic, c)
	}
	b := startBroker(t, dir, args...)
	s.verify(t, b, topic, cycles)
	if code := b.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
}

// compactState is what the producer did: op i writes key i%keys, a
// tombstone when i%13 == 0, else the value "v<i>"; every record carries i
// in a header.
type compactState struct {
	next  int            // the next op
	acked map[string]int // per key, the newest acknowledged op
	seen  map[string]int // per key, the newest op read back after a restart
}

const compactKeys = 500

func compactOp(i int) *kgo.Record {
	r := &kgo.Record{Key: []byte(fmt.Sprintf("k%03d", i%compactKeys)),
		Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}}}
	if i%13 != 0 {
		r.Value = []byte(fmt.Sprintf("v%d", i))
	}
	return r
}

// loadAndKill produces ops until enough are acknowledged and the cleaner
// has made several passes, then SIGKILLs b at a random moment.
func (s *compactState) loadAndKill(t *testing.T, b *broker, topic string, cycle int) {
	t.Helper()
	// One request in flight keeps each key's records in the order produced.
	cl := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxProduceRequestsInflightPerBroker(1), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordDeliveryTimeout(10*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var cbs sync.WaitGroup
	acked := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ; ctx.Err() == nil; s.next++ {
			r := compactOp(s.next)
			i := s.next
			cbs.Add(1)
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				defer cbs.Done()
				if err == nil {
					mu.Lock()
					k := string(r.Key)
					s.acked[k] = max(s.acked[k], i)
					acked++
					mu.Unlock()
				}
			})
		}
	}()
	runs0 := cleanerRuns(t, b)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := acked
		mu.Unlock()
		if n >= 20000 && cleanerRuns(t, b) >= runs0+5 {
			break
		}
		if b.exited() {
			t.Fatalf("broker exited (status %d) under load", b.exitCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d records acknowledged, %d cleaner runs", n, cleanerRuns(t, b)-runs0)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
	cancel()
	<-done
	cl.Close()
	waitTimeout(t, &cbs, 30*time.Second, "produce callbacks after the kill")
	t.Logf("cycle %d: killed after %d ops, %d acknowledged", cycle+1, s.next, acked)
}

// cleanerRuns reads sluice_cleaner_runs_total from /metrics.
func cleanerRuns(t *testing.T, b *broker) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + b.metrics + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^sluice_cleaner_runs_total (\d+)`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// verify reads the topic back (see the test's comment).
func (s *compactState) verify(t *testing.T, b *broker, topic string, after int) {
	t.Helper()
	recs := consumeAll(t, b, topic)
	last := map[string]int{}
	prevOff := int64(-1)
	for _, r := range recs {
		if r.Offset <= prevOff {
			t.Fatalf("after kill %d: offset %d after %d", after, r.Offset, prevOff)
		}
		prevOff = r.Offset
		if len(r.Headers) != 1 || r.Headers[0].Key != "i" {
			t.Fatalf("after kill %d: record at %d has headers %v", after, r.Offset, r.Headers)
		}
		i, err := strconv.Atoi(string(r.Headers[0].Value))
		want := compactOp(i)
		if err != nil || i >= s.next || string(r.Key) != string(want.Key) || string(r.Value) != string(want.Value) ||
			(r.Value == nil) != (want.Value == nil) {
			t.Fatalf("after kill %d: record at %d (key %s, value %q, op %s) was never produced", after, r.Offset, r.Key, r.Value, r.Headers[0].Value)
		}
		k := string(r.Key)
		if prev, ok := last[k]; ok && i <= prev {
			t.Fatalf("after kill %d: key %s: op %d at offset %d after op %d", after, k, i, r.Offset, prev)
		}
		last[k] = i
	}
	for k, a := range s.acked {
		if last[k] < a {
			t.Fatalf("after kill %d: key %s regressed: newest op read back %d, op %d was acknowledged", after, k, last[k], a)
		}
	}
	for k, p := range s.seen {
		if last[k] < p {
			t.Fatalf("after kill %d: key %s regressed: newest op read back %d, %d was read back before", after, k, last[k], p)
		}
	}
	s.seen = last
	t.Logf("after kill %d: %d records hold %d keys (%d ops produced); no key regressed", after, len(recs), len(last), s.next)
}
