package node

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fastGroups makes rebalances quick enough for tests: short minimum session
// timeout and initial delay. Timeouts stay Kafka's rules otherwise.
func fastGroups(c *Config) {
	c.Groups.MinSessionTimeout = 100 * time.Millisecond
	c.Groups.InitialRebalanceDelay = 100 * time.Millisecond
}

// killableDialer lets a test "kill" a client: every connection is cut and
// no new one can be made, so the member stops heartbeating without leaving
// the group — as a crashed process would.
type killableDialer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (d *killableDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, net.ErrClosed
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *killableDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		c.Close()
	}
}

// member is one group consumer that records what it processed and commits
// after every poll.
type member struct {
	cl     *kgo.Client
	dialer *killableDialer
	stop   chan struct{}
	done   chan struct{}
}

func startMember(t *testing.T, n *Node, groupID, topic string, seen []atomic.Int32, extra ...kgo.Opt) *member {
	t.Helper()
	m := &member{dialer: &killableDialer{}, stop: make(chan struct{}), done: make(chan struct{})}
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second), kgo.DisableAutoCommit(),
		kgo.Dialer(m.dialer.DialContext), kgo.RetryTimeout(5 * time.Second),
	}, extra...)
	m.cl = newClient(t, n, opts...)
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := m.cl.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				seen[binary.BigEndian.Uint64(r.Value)].Add(1)
			})
			select {
			case <-m.stop: // killed mid-poll: processed but never committed
				return
			default:
			}
			if len(fs.Records()) > 0 {
				cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
				m.cl.CommitUncommittedOffsets(cctx)
				ccancel()
			}
		}
	}()
	return m
}

// kill stops the member as a crash would: no LeaveGroup, no more heartbeats.
func (m *member) kill() {
	close(m.stop)
	m.dialer.kill()
	<-m.done
}

// leave stops the member cleanly (commit, LeaveGroup).
func (m *member) leave() {
	close(m.stop)
	<-m.done
	m.cl.Close()
}

func produceNumbered(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := from; i < to; i++ {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(i))
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func countSeen(seen []atomic.Int32) (distinct int) {
	for i := range seen {
		if seen[i].Load() > 0 {
			distinct++
		}
	}
	return distinct
}

// waitCommittedAtEnd waits until the group's committed offsets equal the end
// offsets of every partition of topic.
func waitCommittedAtEnd(t *testing.T, adm *kadm.Client, groupID, topic string) kadm.OffsetResponses {
	t.Helper()
	ctx := testCtx(t)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := adm.FetchOffsets(ctx, groupID)
		behind := 0
		if err == nil {
			ends.Each(func(e kadm.ListedOffset) {
				if o, ok := got.Lookup(e.Topic, e.Partition); !ok || o.At != e.Offset {
					behind++
				}
			})
			if behind == 0 {
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets never reached the end: err %v, %d partitions behind", err, behind)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGroupFailover: 3 members share 12 partitions and 1M records, one is
// killed (no LeaveGroup) and one added mid-way: every record is processed
// at least once and the final commits are the end offsets; after a broker
// restart the commits are still there and a new member resumes from them.
func TestGroupFailover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) { testGroupFailover(t, tc.balancer) })
	}
}

func testGroupFailover(t *testing.T, bal kgo.GroupBalancer) {
	const records = 1_000_000
	dir := t.TempDir()
	n := startNode(t, dir, fastGroups)
	adm := newAdmin(t, n)
	ctx := testCtx(t)
	if _, err := adm.CreateTopic(ctx, 12, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	produceNumbered(t, newClient(t, n, kgo.ProducerLinger(5*time.Millisecond)), "events", 0, records)

	seen := make([]atomic.Int32, records)
	var members []*member
	for range 3 {
		members = append(members, startMember(t, n, "grp", "events", seen, kgo.Balancers(bal)))
	}
	waitSeen := func(want int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for countSeen(seen) < want {
			if time.Now().After(deadline) {
				t.Fatalf("processed %d distinct records, want %d", countSeen(seen), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSeen(records / 3)
	members[0].kill()
	waitSeen(2 * records / 3)
	members = append(members, startMember(t, n, "grp", "events", seen, kgo.Balancers(bal)))
	waitSeen(records)
	committed := waitCommittedAtEnd(t, adm, "grp", "events")
	for _, m := range members[1:] {
		m.leave()
	}
	dup := 0
	for i := range seen {
		if seen[i].Load() > 1 {
			dup++
		}
	}
	t.Logf("%d records, %d processed more than once (the killed member's uncommitted work)", records, dup)

	// Restart: commits survive, and a new member resumes from them.
	n.Close(context.Background())
	n = startNode(t, dir, fastGroups)
	adm = newAdmin(t, n)
	after, err := adm.FetchOffsets(testCtx(t), "grp")
	if err != nil {
		t.Fatal(err)
	}
	committed.Each(func(o kadm.OffsetResponse) {
		if a, ok := after.Lookup(o.Topic, o.Partition); !ok || a.At != o.At {
			t.Errorf("%s/%d: committed %d before restart, %+v after", o.Topic, o.Partition, o.At, a)
		}
	})
	produceNumbered(t, newClient(t, n), "events", records, records+1000)
	seen2 := make([]atomic.Int32, records+1000)
	m := startMember(t, n, "grp", "events", seen2, kgo.Balancers(bal))
	deadline := time.Now().Add(30 * time.Second)
	for countSeen(seen2) < 1000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	m.leave()
	if got := countSeen(seen2); got != 1000 {
		t.Fatalf("after restart the new member processed %d records, want exactly the 1000 new ones", got)
	}
	for i := 0; i < records; i++ {
		if seen2[i].Load() != 0 {
			t.Fatalf("record %d (committed before the restart) was consumed again", i)
		}
	}
}

// TestGroupStaticMembership: a static member (group.instance.id) that goes
// away without leaving and comes back within the session timeout takes its
// old place without a rebalance; the same dance without instance ids does
// rebalance (the control that shows the test can tell).
func TestGroupStaticMembership(t *testing.T) {
	for _, static := range []bool{true, false} {
		name := map[bool]string{true: "static", false: "dynamic"}[static]
		t.Run(name, func(t *testing.T) {
			n := startNode(t, "", fastGroups)
			adm := newAdmin(t, n)
			if _, err := adm.CreateTopic(testCtx(t), 4, 1, nil, "s"); err != nil {
				t.Fatal(err)
			}
			var assigned atomic.Int32 // assignments seen by the member that stays
			opts := func(id string) []kgo.Opt {
				o := []kgo.Opt{kgo.SessionTimeout(3 * time.Second)}
				if static {
					o = append(o, kgo.InstanceID(id))
				}
				return o
			}
			seen := make([]atomic.Int32, 1)
			stay := startMember(t, n, "sg", "s", seen, append(opts("stay"),
				kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { assigned.Add(1) }))...)
			away := startMember(t, n, "sg", "s", seen, opts("away")...)
			waitStable := func(members int) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for {
					gs, err := adm.DescribeGroups(testCtx(t), "sg")
					if err == nil && gs["sg"].State == "Stable" && len(gs["sg"].Members) == members {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("group never became Stable with %d members: %+v %v", members, gs, err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			waitStable(2)
			time.Sleep(300 * time.Millisecond) // let the stayer's callbacks settle
			_, genBefore := stay.cl.GroupMetadata()
			before := assigned.Load()

			away.kill() // no LeaveGroup
			back := startMember(t, n, "sg", "s", seen, opts("away")...)
			// A dynamic rejoin starts a rebalance that completes once the dead
			// member's session (3 s) expires; a static one takes the dead
			// member's place at once. Wait past the session either way.
			time.Sleep(4 * time.Second)
			_, genAfter := stay.cl.GroupMetadata()
			rebalanced := genAfter != genBefore || assigned.Load() != before
			if static && rebalanced {
				t.Fatalf("static rejoin rebalanced: generation %d -> %d, assignments %d -> %d",
					genBefore, genAfter, before, assigned.Load())
			}
			if !static && !rebalanced {
				t.Fatalf("dynamic rejoin did not rebalance (generation %d): the test cannot tell", genAfter)
			}
			if static {
				gs, err := adm.DescribeGroups(testCtx(t), "sg")
				if err != nil || len(gs["sg"].Members) != 2 {
					t.Fatalf("after static rejoin: %+v %v", gs, err)
				}
			}
			back.leave()
			stay.leave()
		})
	}
}
