package ctrl

import "sync"

// partRecord is one partition's record in a many-partition operation.
type partRecord struct {
	topic string
	part  int32
	rec   Record
}

// proposeBatch bounds the records per proposal of a many-partition operation (ElectLeaders,
// AlterReassignments): one raft entry stays well under MaxRecordSize.
const proposeBatch = 1000

// proposePerPartition proposes recs in chunks of proposeBatch and calls done(res) once every chunk is settled, with
// each failed partition's error (through mapErr, when set) in res. The chunks complete on whichever goroutine runs
// Process; the last one to finish answers. A failure to propose the first chunk is returned (nothing was proposed,
// done is never called); a later one fails the chunks not yet proposed. Called with n.mu held.
func (n *Node) proposePerPartition(recs []partRecord, res map[string]map[int32]error, mapErr func(error) error,
	done func(map[string]map[int32]error)) error {
	var mu sync.Mutex
	total := (len(recs) + proposeBatch - 1) / proposeBatch
	left := total
	finish := func(failed []partRecord, chunks int, err error) {
		if err != nil && mapErr != nil {
			err = mapErr(err)
		}
		mu.Lock()
		if err != nil {
			for _, r := range failed {
				res[r.topic][r.part] = err
			}
		}
		left -= chunks
		last := left == 0
		mu.Unlock()
		if last {
			done(res)
		}
	}
	for lo := 0; lo < len(recs); lo += proposeBatch {
		chunk := recs[lo:min(lo+proposeBatch, len(recs))]
		rs := make([]Record, len(chunk))
		for i, r := range chunk {
			rs[i] = r.rec
		}
		err := n.proposeRecords(rs, func(err error) { finish(chunk, 1, err) })
		if err != nil && lo == 0 {
			return err // nothing proposed: a plain synchronous failure
		}
		if err != nil { // e.g. a leadership transfer began: the chunks not proposed fail with err
			rest, chunks := recs[lo:], total-lo/proposeBatch
			n.later(func() { finish(rest, chunks, err) })
			break
		}
	}
	return nil
}
