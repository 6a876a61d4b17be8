// Package group is Kafka's classic group coordinator (GroupCoordinator and
// GroupMetadataManager, the pre-KIP-848 protocol) and its committed offsets,
// as pure logic: no network, no disk. The node routes the group APIs to
// Coordinator.HandleFrom, persists records through the Log interface (one
// partition of __consumer_offsets per call) and calls Load / Unload as it
// gains and loses leadership of those partitions. Time comes from a Clock,
// so tests drive every timer by hand.
//
// # What it owns
//
//   - Membership: JoinGroup (KIP-394 member ids, KIP-345 static members,
//     group.max.size, the initial rebalance delay), SyncGroup, Heartbeat,
//     LeaveGroup; states Empty, PreparingRebalance, CompletingRebalance,
//     Stable, Dead with Kafka's transitions, error codes and timers
//     (session, rebalance, pending-sync, pending-member, new-member join).
//   - Offsets: OffsetCommit, OffsetFetch, OffsetDelete, and expiry under
//     offsets.retention.minutes (KIP-211 rules).
//   - Admin: DescribeGroups, ListGroups, DeleteGroups.
//
// # Records
//
// The records are Kafka's own (kmsg codecs): GroupMetadataKey v2 /
// GroupMetadataValue v3 for a group, OffsetCommitKey v1 / OffsetCommitValue
// v3 (v1 when the commit carries a retention time, as Kafka writes) for an
// offset, nil values as tombstones. A group record is written when the
// leader's assignment arrives (SyncGroup is answered once it is durable),
// when a static member replaces itself without a rebalance, and when a
// group becomes Empty. Offsets become visible to OffsetFetch, and commits
// are answered, once durable. Deletions (OffsetDelete, DeleteGroups, expiry)
// change memory at once and are answered when their tombstones are durable.
// Load replays a partition, so a log written by one coordinator rebuilds
// the same groups and offsets in the next.
//
// # Concurrency and lock order
//
// Coordinator.mu guards the partition table and the group map; each group
// has its own mu guarding everything about that group. Order: group.mu
// before Coordinator.mu (a group takes the map lock to remove itself when it
// dies); nothing holds Coordinator.mu while taking a group lock — lookups
// release it first and retry if the group died meanwhile. appendQueue.mu and
// the Clock's own lock are leaves.
//
// Handlers, timer callbacks and Log completions all run the same way: lock
// one group, decide, collect replies and queue appends, unlock, then issue
// the queued appends and the replies with no lock held. So respond and
// Log.Append may call back synchronously (a fake log completing inside
// Append, a node answering inline). Appends leave the queue in the order
// they were decided, which keeps the log in the order of the state changes;
// completions may arrive in any order (each commit carries a sequence number
// and never overwrites a later value or tombstone).
//
// # Deviations from Kafka, all deliberate
//
//   - A JoinGroup or SyncGroup that a newer one from the same member
//     replaces, or that is parked when its member is removed, is answered
//     (REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID) instead of never.
//   - Offsets of an Empty group expire retention after the later of the
//     group becoming Empty and their commit (Kafka: the former only).
//   - A group created by a request that was then rejected (a JoinGroup with
//     no protocols, a commit with only oversized metadata) is dropped at
//     once instead of lingering until the next cleanup.
//   - OffsetDelete and DeleteGroups wait for their tombstones (Kafka's
//     classic coordinator writes them with acks=0 and answers at once; its
//     KIP-848 runtime waits, as here).
//   - Records of groups that hash to another partition, and malformed
//     records, are skipped by Load and reported in a *LoadError instead of
//     aborting the load.
//   - Tie-breaking between equally voted protocols is by first vote (Kafka:
//     hash order).
//   - The retention check does not delete an Empty group while a member id
//     it handed out (MEMBER_ID_REQUIRED) is still outstanding.
//
// Not a deviation, though it may surprise: a static leader that restarts
// into a Stable group gets, from JoinGroup v9 on, SkipAssignment=true with
// the member list (KIP-814); before v9 the old leader id and no members.
package group
