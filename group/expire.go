package group

// Offset expiry is GroupMetadataManager.cleanupGroupMetadata with Kafka 2.1+
// (KIP-211) rules, run every offsets.retention.check.interval.ms.

// armExpiry schedules the next check. c.mu held.
func (c *Coordinator) armExpiry() {
	if c.closed {
		return
	}
	c.expiryTimer = c.clock.AfterFunc(c.cfg.RetentionCheckInterval, func() {
		c.expireOffsets()
		c.mu.Lock()
		c.armExpiry()
		c.mu.Unlock()
	})
}

// expireOffsets removes expired offsets from every group, with tombstones,
// and deletes Empty groups left without offsets. The tombstones are not
// waited for (Kafka's rule): memory has already forgotten those offsets, so
// a lost tombstone is not rewritten by the next check; the records come
// back only when the partition is loaded again, and expire again then.
func (c *Coordinator) expireOffsets() {
	now := c.nowMs()
	retention := c.cfg.OffsetsRetention.Milliseconds()
	removed := 0
	for _, g := range c.snapshotGroups() {
		g.mu.Lock()
		if g.dead {
			g.mu.Unlock()
			continue
		}
		expired := expiredOffsets(g, now, retention)
		recs := removeOffsets(g, expired)
		recs = c.buryIfEmpty(g, recs)
		if len(recs) > 0 {
			id := g.id
			c.aq.push(g.part, recs, func(err error) {
				if err != nil {
					c.lg.Warn("failed to write offset expiry tombstones", "group", id, "error", err)
				}
			})
		}
		removed += len(expired)
		g.mu.Unlock()
		c.aq.drain(c.log)
	}
	if removed > 0 {
		c.lg.Info("removed expired offsets", "offsets", removed)
	}
}

// expiredOffsets picks the offsets to expire (GroupMetadata.removeExpiredOffsets):
//   - Empty group with a protocol type: retention counts from when the group
//     became Empty or from the commit, whichever is later. (Kafka counts from
//     the state change alone, so an offset committed to a long-Empty group,
//     e.g. by a reset tool, would vanish at the next check; the later of the
//     two never expires an offset younger than the retention.)
//   - Stable "consumer" group with known subscriptions: offsets of topics no
//     longer subscribed, counted from the commit.
//   - no protocol type (offsets-only, "simple" consumers): from the commit.
//
// An explicit expire timestamp (v2-v4 OffsetCommit with a retention time)
// wins over the rules above, and offsets with a commit in flight never
// expire. g.mu held.
func expiredOffsets(g *group, now, retention int64) []tp {
	var base func(e *offsetEntry) int64
	var subscribed func(topic string) bool
	switch {
	case g.protocolType != "" && g.state == stateEmpty:
		base = func(e *offsetEntry) int64 {
			if g.stateMs >= 0 {
				return max(g.stateMs, e.commitMs)
			}
			return e.commitMs
		}
	case g.protocolType == consumerProtocolType && g.subscribedKnown && g.state == stateStable:
		base = func(e *offsetEntry) int64 { return e.commitMs }
		subscribed = func(topic string) bool { _, ok := g.subscribed[topic]; return ok }
	case g.protocolType == "":
		base = func(e *offsetEntry) int64 { return e.commitMs }
	default:
		return nil
	}
	var out []tp
	for k, e := range g.offsets {
		if !e.committed || e.pending > 0 || subscribed != nil && subscribed(k.topic) {
			continue
		}
		if e.expireMs >= 0 {
			if now >= e.expireMs {
				out = append(out, k)
			}
			continue
		}
		if now-base(e) >= retention {
			out = append(out, k)
		}
	}
	return out
}
