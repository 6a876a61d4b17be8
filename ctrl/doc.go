// Package ctrl is sluice's Raft controller core: the replicated cluster metadata, the decisions made over it, and
// the driver that replicates it with go.etcd.io/raft/v3. It does no networking of its own and knows nothing of the
// Kafka wire protocol; node wires it to both.
//
// # What it owns
//
//   - State (state*.go): brokers (id, incarnation, epoch = index of the registration record, listeners, rack,
//     fenced, last seen as a recorded controller time), topics (name, id, configs), partitions (replicas, ISR,
//     leader, leader epoch, partition epoch), broker-level configs and the next producer id. State.Apply validates
//     every Record and rejects invalid ones (state unchanged, error wrapping ErrInvalidRecord and, where one fits, a
//     kerr code). Apply is deterministic. MarshalSnapshot/UnmarshalSnapshot move the whole state.
//   - Records (record.go): outcomes, not requests, in a versioned codec (version byte + strict JSON). A Batch is
//     applied atomically. Record types and their numbers are part of the on-disk format.
//   - Decisions (place.go, elect.go): pure functions. Place is Kafka's rack-aware assignReplicasToBrokers.
//     ElectLeader picks from the ISR in replica order; unclean only when the topic (or cluster default) sets
//     unclean.leader.election.enable=true and no ISR member is live. FenceChanges/UnfenceChanges/PreferredChanges/
//     OfflineChanges compute ChangePartition records; ValidateAlterPartition checks a leader's ISR change. Every
//     ChangePartition carries the partition epoch it was computed from, so a stale decision is rejected at apply.
//   - The driver (raft*.go, wal*.go, session.go, ops.go): Node = raft.RawNode + raft.MemoryStorage + WAL (a
//     directory of CRC'd frames through the FS interface) + State + the broker sessions it enforces while active.
//   - Test support (memnet.go): MemNetwork, a Transport with partitions, loss and delay, and FakeClock.
//
// # Ready-loop contract
//
// Node.Process runs one raft Ready cycle in raft's required order: persist snapshot/hard state/entries and fsync
// (WAL), then append to MemoryStorage, then send messages, then apply committed entries, then Advance, then
// snapshot and compact every Config.SnapshotEvery entries (the WAL is rewritten to the entries after the snapshot;
// two snapshot files are kept). A storage error is sticky: the Node stops and returns it from then on.
//
// # Concurrency and lock order
//
// Every Node method is safe for concurrent use and serializes on Node.mu. Transport.Send is called with Node.mu
// held, so a Transport must neither block nor call into the sending Node; inbound messages come in through Step.
// Proposal callbacks (Propose, RegisterBroker, CreateTopic, AlterPartition, ElectPreferredLeaders) run without
// Node.mu, on the goroutine that called Process or Tick, so they may call the Node. Lock order: Node.mu, then
// MemNetwork.mu. State itself is not synchronized: read it through Node.Read.
//
// # What node must do to use it
//
//   - Build one Node per controller voter: Config{ID: RaftID(node.id), Peers: RaftID of each
//     controller.quorum.voters entry, Dir: <data-dir>/__cluster_metadata-0, Transport: a real one}, then run
//     Node.Run(ctx, 100ms) on one goroutine (the tick sets the election timeout: 10 ticks by default).
//   - Provide a network Transport that carries raftpb.Message (Marshal/Unmarshal) between voters, calls Step on
//     receipt, ReportUnreachable on send failures, and ReportSnapshot after sending a MsgSnap.
//   - Route BrokerRegistration to RegisterBroker, BrokerHeartbeat to Heartbeat (both answer NOT_CONTROLLER on
//     ErrNotLeader), CreateTopics to CreateTopic, AlterPartition to AlterPartition, ElectLeaders(preferred) to
//     ElectPreferredLeaders; anything else as a Record through Propose.
//   - Brokers follow the committed state through Node.Read (a metadata-log listener is not built yet).
//
// Not yet here: voter membership changes (conf changes are applied if present but never proposed), controlled
// shutdown, reassignments, ELR, a push feed of applied records for brokers, metrics.
package ctrl
