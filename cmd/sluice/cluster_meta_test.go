package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partView is one partition as a node's Metadata answer shows it.
type partView struct {
	leader        int32
	replicas, isr []int32
	err           int16
}

// metaView is a node's Metadata answer, reduced to what the tests compare.
type metaView struct {
	brokers []int32               // sorted
	topics  map[string][]partView // indexed by partition
}

// metaFrom asks node i itself (not whichever broker kgo would route to) for
// the metadata of every topic.
func (c *procCluster) metaFrom(i int, timeout time.Duration) (*metaView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	kr, err := c.direct[i].SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kr.(*kmsg.MetadataResponse)
	v := &metaView{topics: map[string][]partView{}}
	for _, b := range resp.Brokers {
		v.brokers = append(v.brokers, b.NodeID)
	}
	slices.Sort(v.brokers)
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if t.ErrorCode != 0 {
			return nil, fmt.Errorf("topic %s: %w", *t.Topic, kerr.ErrorForCode(t.ErrorCode))
		}
		ps := make([]partView, len(t.Partitions))
		for _, p := range t.Partitions {
			if p.Partition < 0 || int(p.Partition) >= len(ps) {
				return nil, fmt.Errorf("topic %s: partition %d of %d", *t.Topic, p.Partition, len(ps))
			}
			isr := slices.Clone(p.ISR)
			slices.Sort(isr)
			ps[p.Partition] = partView{leader: p.Leader, replicas: p.Replicas, isr: isr, err: p.ErrorCode}
		}
		v.topics[*t.Topic] = ps
	}
	return v, nil
}

// healthy reports why v is not a healthy view of topic (parts partitions,
// every node live and in every ISR), or "".
func (c *procCluster) healthy(v *metaView, topic string, parts int) string {
	if len(v.brokers) != c.size() {
		return fmt.Sprintf("brokers %v", v.brokers)
	}
	ps := v.topics[topic]
	if len(ps) != parts {
		return fmt.Sprintf("topic %s has %d partitions", topic, len(ps))
	}
	for p, pv := range ps {
		if pv.err != 0 || pv.leader < 0 || len(pv.isr) != c.size() {
			return fmt.Sprintf("%s[%d]: leader %d isr %v err %d", topic, p, pv.leader, pv.isr, pv.err)
		}
	}
	return ""
}

// waitHealthy waits until every node answers Metadata with all nodes live,
// every partition of each topic led and fully in sync (ISR = all nodes),
// and the same leaders everywhere. It returns the leader of each partition
// of the first topic.
func (c *procCluster) waitHealthy(timeout time.Duration, parts int, topics ...string) []int32 {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var why string
	for {
		c.checkNoneExited()
		why = ""
		var leaders [][]int32
		for i := range c.nodes {
			v, err := c.metaFrom(i, 2*time.Second)
			if err != nil {
				why = fmt.Sprintf("node %d: %v", i+1, err)
				break
			}
			var ls []int32
			for _, topic := range topics {
				if why = c.healthy(v, topic, parts); why != "" {
					why = fmt.Sprintf("node %d: %s", i+1, why)
					break
				}
				for _, pv := range v.topics[topic] {
					ls = append(ls, pv.leader)
				}
			}
			if why != "" {
				break
			}
			leaders = append(leaders, ls)
		}
		if why == "" {
			for i := 1; i < len(leaders); i++ {
				if !slices.Equal(leaders[i], leaders[0]) {
					why = fmt.Sprintf("nodes disagree on leaders: %v", leaders)
				}
			}
		}
		if why == "" {
			return leaders[0][:parts]
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not healthy within %v: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLive waits until every running node lists want live brokers.
func (c *procCluster) waitLive(want int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.checkNoneExited()
		why := ""
		for i := range c.nodes {
			if !c.up(i) {
				continue
			}
			v, err := c.metaFrom(i, 2*time.Second)
			if err != nil {
				why = fmt.Sprintf("node %d: %v", i+1, err)
			} else if len(v.brokers) != want {
				why = fmt.Sprintf("node %d lists brokers %v", i+1, v.brokers)
			}
			if why != "" {
				break
			}
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster did not reach %d live brokers within %v: %s", want, timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaderOf is the leader of topic[p] (a node index) as the first running
// node that knows one says.
func (c *procCluster) leaderOf(topic string, p int32) int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.nodes {
			if !c.up(i) {
				continue
			}
			if v, err := c.metaFrom(i, 2*time.Second); err == nil && int(p) < len(v.topics[topic]) {
				if l := v.topics[topic][p].leader; l > 0 {
					return int(l) - 1
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no node knows a leader of %s[%d]", topic, p)
	return -1
}

// activeController finds the active controller (a node index) from the
// nodes' sluice_active_controller_count metric, waiting until exactly one
// running node reports 1.
func (c *procCluster) activeController() int {
	c.t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var saw []int
	for time.Now().Before(deadline) {
		saw = saw[:0]
		for i, b := range c.nodes {
			if !c.up(i) || b.metrics == "" {
				continue
			}
			if v, err := metricValue(hc, b.metrics, "sluice_active_controller_count"); err == nil && v == "1" {
				saw = append(saw, i)
			}
		}
		if len(saw) == 1 {
			return saw[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("not exactly one active controller within 30s (last seen: nodes %v)", saw)
	return -1
}

// metricValue scrapes http://addr/metrics for an unlabelled metric.
func metricValue(hc *http.Client, addr, name string) (string, error) {
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no metric %s", addr, name)
}

// createTopicRF creates topic with the cluster's size as replication factor
// and min.insync.replicas=minISR, then waits until it is healthy.
func (c *procCluster) createTopicRF(adm *kadm.Client, topic string, parts, minISR int) []int32 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := map[string]*string{"min.insync.replicas": kadm.StringPtr(fmt.Sprint(minISR))}
	res, err := adm.CreateTopic(ctx, int32(parts), int16(c.size()), cfg, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		c.t.Fatalf("create %s: %v", topic, err)
	}
	return c.waitHealthy(60*time.Second, parts, topic)
}
