package segstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// RetentionCheckEvery is log.retention.check.interval.ms.
const RetentionCheckEvery = 5 * time.Minute

// background writes recovery points every CheckpointEvery, applies
// retention every log.retention.check.interval.ms and producer id expiry
// every producer.id.expiration.check.interval.ms.
func (st *Store) background() {
	defer close(st.bgDone)
	ck := time.NewTicker(st.cfg.CheckpointEvery)
	defer ck.Stop()
	ret := time.NewTicker(RetentionCheckEvery)
	defer ret.Stop()
	pexp := time.NewTicker(st.producerExpiryCheckEvery())
	defer pexp.Stop()
	for {
		select {
		case <-st.bgStop:
			return
		case <-ck.C:
			if err := st.Checkpoint(); err != nil {
				st.log.Error("checkpoint", "err", err)
			}
		case <-ret.C:
			st.EnforceRetention()
		case <-pexp.C:
			st.ExpireProducers()
		}
	}
}

// EnforceRetention applies retention to every log now. Safe for concurrent use.
func (st *Store) EnforceRetention() {
	now := st.now()
	for _, l := range st.Logs() {
		if n, err := l.EnforceRetention(now); err != nil {
			st.log.Error("retention", "dir", l.dir, "err", err)
		} else if n > 0 {
			st.log.Info("retention deleted segments", "dir", l.dir, "segments", n)
		}
	}
}

// Checkpoint writes every log's recovery point and log start offset, which
// bounds the recovery scan after a crash. Safe for concurrent use.
func (st *Store) Checkpoint() error {
	st.ckMu.Lock()
	defer st.ckMu.Unlock()
	logs := st.Logs()
	sort.Slice(logs, func(i, j int) bool {
		if logs[i].topic != logs[j].topic {
			return logs[i].topic < logs[j].topic
		}
		return logs[i].partition < logs[j].partition
	})
	rps := make([][]string, 0, len(logs))
	starts := make([][]string, 0, len(logs))
	for _, l := range logs {
		o := l.Offsets()
		p := strconv.Itoa(int(l.partition))
		rps = append(rps, []string{l.topic, p, strconv.FormatInt(o.Durable, 10)})
		starts = append(starts, []string{l.topic, p, strconv.FormatInt(o.Start, 10)})
	}
	err := writeCheckpoint(st.fs, filepath.Join(st.cfg.Dir, recoveryPointFile), rps)
	if err2 := writeCheckpoint(st.fs, filepath.Join(st.cfg.Dir, logStartOffsetFile), starts); err == nil {
		err = err2
	}
	if err3 := st.writeCleanerOffsets(logs); err == nil {
		err = err3
	}
	if err != nil {
		return storageErr("checkpoint", err)
	}
	return nil
}

// Close finishes every queued append, syncs every log, writes indexes and
// checkpoints and the clean-shutdown marker (so the next Open skips the
// recovery scan), and closes the engine. Appends after Close starts fail
// with ErrClosed. Safe for concurrent use; call once.
func (st *Store) Close() error {
	st.closing.Store(true)
	// Barrier: an Append that saw closing unset holds its log's mu until it
	// has queued; after this loop every such append is in the queue.
	logs := st.Logs()
	for _, l := range logs {
		l.mu.Lock()
		l.mu.Unlock() //nolint:staticcheck // the empty critical section is the barrier

	}
	st.stopCommitters()
	close(st.bgStop)
	<-st.bgDone
	st.stopCleaner()

	var errs []error
	for _, l := range logs {
		l.mu.Lock()
		for _, s := range l.segs {
			if err := s.cutPaddingLocked(); err != nil && l.err == nil {
				l.err = err // Flush reports it and the marker is not written
			}
		}
		l.mu.Unlock()
		if err := l.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.dir, err))
			continue
		}
		l.snapshotAtClose()
		l.mu.Lock()
		for _, s := range l.segs {
			if err := s.writeIndexes(st.fs); err != nil {
				errs = append(errs, err)
			}
		}
		if err := l.saveEpochsLocked(); err != nil {
			errs = append(errs, err)
		}
		l.closed = true
		l.mu.Unlock()
	}
	if err := st.Checkpoint(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		// Only a fully flushed store may skip recovery next time.
		marker := filepath.Join(st.cfg.Dir, cleanShutdownFile)
		if err := vfs.WriteFileAtomic(st.fs, marker, nil); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range logs {
		l.mu.Lock()
		l.closeSegs()
		l.err = ErrClosed
		l.mu.Unlock()
	}
	if err := st.cfg.Engine.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := st.closeExtraEngines(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// readOffsets reads a "topic partition offset" checkpoint.
func readOffsets(fs vfs.FS, path string) (map[tpKey]int64, error) {
	lines, err := readCheckpoint(fs, path, 3)
	if err != nil {
		return nil, err
	}
	out := make(map[tpKey]int64, len(lines))
	for _, l := range lines {
		p, err1 := strconv.ParseInt(l[1], 10, 32)
		o, err2 := strconv.ParseInt(l[2], 10, 64)
		if err1 != nil || err2 != nil || o < 0 {
			return nil, fmt.Errorf("%s: bad entry %q", path, l)
		}
		out[tpKey{l[0], int32(p)}] = o
	}
	return out, nil
}

// Stats counts the committer's work since Open.
type Stats struct {
	Rounds int64 // engine submissions (group commits)
	Writes int64 // vectored writes
	Syncs  int64 // fdatasyncs on the append path
	Bytes  int64 // bytes written
}

// Stats returns the committers' counters, summed. Safe for concurrent use.
func (st *Store) Stats() Stats {
	var s Stats
	for _, c := range st.cs {
		cs := c.stats()
		s.Rounds += cs.Rounds
		s.Writes += cs.Writes
		s.Syncs += cs.Syncs
		s.Bytes += cs.Bytes
	}
	return s
}
