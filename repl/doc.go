// Package repl is replication's decision logic for one partition, Kafka's
// ISR protocol with high watermarks and leader epochs (KIP-101, KIP-279,
// KIP-320, KIP-497). It owns no goroutines, sockets or files: the node feeds
// it requests and answers and does the I/O around it, as etcd raft's
// RawNode is driven.
//
// Leader side (leader.go, leader_fetch.go, isr.go, purgatory.go): a Leader
// exists while this broker leads the partition in one leader epoch. It
// learns each follower's LEO from the follower's fetches (HandleFetch),
// keeps the HW = min LEO over the maximal ISR (never backwards, never past
// the leader's LEO), shrinks the ISR when a follower has not caught up for
// replica.lag.time.max.ms (Tick) and grows it when a follower reaches the HW
// and the epoch's start offset. ISR changes go to the controller
// (LeaderConfig.AlterPartition) and are used only once committed; while one
// is in flight the HW and acks=all count the maximal ISR (KIP-497). acks=all
// produces wait in WaitForAcks; CheckAppend refuses them up front with
// NOT_ENOUGH_REPLICAS when the committed ISR is below min.insync.replicas.
// Errors are kerr values (wrapped with context): NOT_ENOUGH_REPLICAS(_AFTER_
// APPEND), REQUEST_TIMED_OUT, NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
// UNKNOWN_LEADER_EPOCH, OFFSET_OUT_OF_RANGE.
//
// Follower side (follower.go, truncate.go): a Follower exists per leader and
// epoch followed. Next says what to send (a fetch with LastFetchedEpoch, or
// an OffsetForLeaderEpoch query with UseEpochQuery); HandleFetch and
// HandleEpochEnd truncate exactly the divergent suffix (DecideTruncation,
// walking back epoch by epoch, never to the HW), append what the leader sent
// as it is (segstore.Log.AppendReplica keeps offsets and epochs) and move
// the follower's HW to min(leader's HW, own LEO). A restarted follower keeps
// its log above its HW. HandleOutOfRange answers the leader's
// OFFSET_OUT_OF_RANGE (DecideOutOfRange): a follower wholly below the
// leader's log start empties its log and restarts it there
// (segstore.Log.TruncateFullyAndStartAt), as Kafka's truncateFullyAndStartAt.
//
// Wiring (for node; not done here):
//   - On metadata (the controller's committed partition state): if this
//     broker is the leader, NewLeader (or Leader.UpdateState for the same
//     epoch), else Leader.Resign and NewFollower. Build the Leader with the
//     broker's HW (replication-offset-checkpoint / the follower's HW).
//   - Produce: Leader.CheckAppend(acks), segstore Append with Leader.Epoch(),
//     on completion Leader.OnAppended(), then for acks=all
//     Leader.WaitForAcks(last, timeout, respond). Call Leader.Tick about once
//     a second per led partition (timeouts, ISR shrink).
//   - Fetch with replica id >= 0: Leader.HandleFetch; on no error and no
//     Diverging, read from the fetch offset up to the LEO (not the HW).
//     Consumer fetches are bounded by Leader.HighWatermark.
//   - OffsetForLeaderEpoch from a follower: Leader.EndOffsetForEpoch.
//   - AlterPartition answers (and send failures or timeouts, as an error)
//     go to Leader.AlterPartitionDone.
//   - One fetcher goroutine per source broker: for each partition it follows
//     from that broker, Follower.Next, batch into one Fetch, hand each
//     partition's answer to Follower.HandleFetch (which blocks until the
//     append is written). Back off on errors; FENCED_LEADER_EPOCH /
//     NOT_LEADER_OR_FOLLOWER mean: wait for metadata.
//
// Concurrency: Leader methods are safe for concurrent use (one mutex per
// Leader, never held while calling out: AlterPartition and WaitForAcks
// callbacks run after it is released, so they may call back in). Follower
// methods are for its one fetcher goroutine, except HighWatermark.
// DecideTruncation is pure. Lock order: Leader.mu → segstore Log.mu (the
// Leader reads the log's offsets and epochs under its own lock).
package repl
