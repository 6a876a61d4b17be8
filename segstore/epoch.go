package segstore

import (
	"fmt"
	"strconv"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// EpochEntry says that leader epoch Epoch wrote its first batch at StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is a partition's leader-epoch history, Kafka's
// `leader-epoch-checkpoint`. Replication uses EndOffsetForEpoch to find where
// a follower's log diverges from the leader's. Guarded by the Log's mu.
type epochCache struct {
	entries []EpochEntry
	dirty   bool // entries differ from the file
}

// assign records that epoch starts at offset, if it is newer than the last one.
func (c *epochCache) assign(epoch int32, offset int64) {
	if epoch < 0 {
		return
	}
	if n := len(c.entries); n > 0 {
		last := c.entries[n-1]
		if epoch <= last.Epoch {
			return
		}
		if offset < last.StartOffset {
			// A newer epoch cannot start before an older one: drop the stale tail.
			c.truncateFromEnd(offset)
		}
	}
	c.entries = append(c.entries, EpochEntry{epoch, offset})
	c.dirty = true
}

// endOffsetFor answers OffsetForLeaderEpoch: the largest epoch <= epoch and
// the offset where it ended (the next epoch's start, or leo for the latest).
// epoch and offset are -1 when epoch is older than everything known.
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].Epoch <= epoch {
			if i == len(c.entries)-1 {
				return c.entries[i].Epoch, leo
			}
			return c.entries[i].Epoch, c.entries[i+1].StartOffset
		}
	}
	return -1, -1
}

// truncateFromEnd removes epochs starting at or after offset (log truncated there).
func (c *epochCache) truncateFromEnd(offset int64) {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= offset {
		n--
	}
	if n != len(c.entries) {
		c.entries = c.entries[:n]
		c.dirty = true
	}
}

// truncateFromStart drops epochs wholly below offset (log start moved up); the
// epoch holding offset is kept and now starts there.
func (c *epochCache) truncateFromStart(offset int64) {
	i := 0
	for i+1 < len(c.entries) && c.entries[i+1].StartOffset <= offset {
		i++
	}
	if i > 0 || (len(c.entries) > 0 && c.entries[0].StartOffset < offset) {
		c.entries = append(c.entries[:0], c.entries[i:]...)
		c.entries[0].StartOffset = max(c.entries[0].StartOffset, offset)
		c.dirty = true
	}
}

func (c *epochCache) save(fs vfs.FS, path string) error {
	lines := make([][]string, len(c.entries))
	for i, e := range c.entries {
		lines[i] = []string{strconv.Itoa(int(e.Epoch)), strconv.FormatInt(e.StartOffset, 10)}
	}
	if err := writeCheckpoint(fs, path, lines); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

func loadEpochCache(fs vfs.FS, path string) (epochCache, error) {
	lines, err := readCheckpoint(fs, path, 2)
	if err != nil {
		return epochCache{}, err
	}
	var c epochCache
	for _, l := range lines {
		e, err1 := strconv.ParseInt(l[0], 10, 32)
		o, err2 := strconv.ParseInt(l[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return epochCache{}, fmt.Errorf("%s: bad entry %q", path, l)
		}
		if n := len(c.entries); n > 0 && (int32(e) <= c.entries[n-1].Epoch || o < c.entries[n-1].StartOffset) {
			return epochCache{}, fmt.Errorf("%s: entries not increasing at %q", path, l)
		}
		c.entries = append(c.entries, EpochEntry{int32(e), o})
	}
	return c, nil
}
