// Package ctrl is sluice's Raft controller: the replicated cluster metadata, the decisions made over it, the
// driver that replicates it with go.etcd.io/raft/v3, and the controller listener (raft transport + the RPCs brokers
// send) with its client. It knows nothing of the Kafka wire protocol; node wires it to that.
//
// # What it owns
//
//   - State (state*.go): brokers (id, incarnation, epoch = index of the registration record, listeners, rack,
//     fenced, last seen as a recorded controller time), topics (name, id, configs), partitions (replicas, ISR,
//     leader, leader epoch, partition epoch, the adding/removing replicas of a reassignment), broker-level configs
//     and the next producer id. State.Apply validates every Record and rejects invalid ones (state unchanged, error
//     wrapping ErrInvalidRecord and, where one fits, a kerr code). Apply is deterministic.
//     MarshalSnapshot/UnmarshalSnapshot move the whole state.
//   - Records (record.go): outcomes, not requests, in a versioned codec (version byte + strict JSON). A Batch is
//     applied atomically. Record types and their numbers are part of the on-disk format.
//   - Decisions (place.go, elect.go): pure functions. Place is Kafka's rack-aware assignReplicasToBrokers.
//     DecideReassign/ReassignCompletions (reassign_decide.go) start, complete and cancel reassignments as KRaft
//     does (KIP-455). ElectLeader picks from the ISR in replica order; unclean only when the topic (or cluster
//     default) sets unclean.leader.election.enable=true and no ISR member is live. FenceChanges/UnfenceChanges/PreferredChanges/
//     OfflineChanges compute ChangePartition records; ValidateAlterPartition checks a leader's ISR change. Every
//     ChangePartition carries the partition epoch it was computed from, so a stale decision is rejected at apply.
//   - The driver (raft*.go, wal*.go, session.go, ops.go): Node = raft.RawNode + raft.MemoryStorage + WAL (a
//     directory of CRC'd frames through the FS interface) + State + the broker sessions it enforces while active.
//   - Operations (ops*.go): CreateTopic, DeleteTopic, CreatePartitions, SetConfigs, AllocateProducerIDs,
//     AlterPartition, ElectLeaders, ElectPreferredLeaders, ControlledShutdown, AlterReassignments,
//     ListReassignments, UnregisterBroker, plus broker sessions (session.go: RegisterBroker, Heartbeat,
//     BrokerDisconnected). After every Process cycle that applied entries, the active controller proposes the
//     completion of each reassignment whose new replicas are all in the ISR (Node.completeReassignments).
//   - Networking (net*.go): Net is a voter's one TCP port carrying raft messages between voters and RPCs from
//     brokers (wire format in net.go); Client is the broker side, calling Local directly while it is active.
//   - Failover (failover.go, session.go): a new active controller gives brokers that run in a voter's process
//     Config.VoterSessionGrace (their Client drops calls stuck on the old controller when Local's raft leader
//     changes), the others Config.SessionGrace, and fences at once a broker whose voter's listener refused a
//     connection after it registered (the process is gone; a stopped or partitioned one does not refuse).
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
// Operation callbacks (Propose, RegisterBroker, CreateTopic, ..., ControlledShutdown) and Config.OnApply run
// without Node.mu, on the goroutine that called Process or Tick, so they may call the Node. Lock order: Node.mu,
// then MemNetwork.mu or Net.mu (Send); Net's per-connection and Client's locks are never held while calling a
// Node. State itself is not synchronized: read it through Node.Read.
//
// # What node must do to use it
//
//   - On a controller voter: ListenNet(NetConfig{Listen, Peers: the other voters}), then one Node with
//     Config{ID: RaftID(node.id), Peers: RaftID of each controller.quorum.voters entry, Dir:
//     <data-dir>/__cluster_metadata-0, Transport: net.Transport()}, then net.Attach(node), then run
//     Node.Run(ctx, 100ms) on one goroutine (the tick sets the election timeout: 10 ticks by default).
//   - On every broker: NewClient(ClientConfig{Voters, Local: the node in combined mode}); register, heartbeat,
//     AlterPartition, admin operations and ControlledShutdown go through it; FetchMetadata long-polls the state.
//     Keep the Client open for the broker's life: closing its connection fences the broker.
//
// Not yet here: voter membership changes (conf changes are applied if present but never proposed), ELR, an
// incremental feed of applied records for brokers (FetchMetadata sends the whole state), TLS/auth on the controller
// listener, metrics. (Replication throttles are the brokers' business: node/replthrottle.go.)
package ctrl
