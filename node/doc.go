// Package node is one sluice broker process: it wires the storage engine
// (segstore), the network front door (netpoll) and the Kafka APIs together.
//
// # Requests
//
// netpoll calls Node.Serve on a connection's event-loop goroutine. The router
// (router.go) decodes the body with kmsg and calls the API's handler, one file
// per API key (api_NN_name.go, whose header comment lists the versions served
// and every deviation from Kafka). Handlers never block the loop: cheap work
// (ApiVersions, Metadata, Produce, Fetch with data ready) runs inline; work
// that touches the disk synchronously (creating or deleting topics, config
// changes, DeleteRecords) runs on its own goroutine via call.async; waiting
// (acks, long-poll fetch) is done by completion callbacks and timers.
//
// # State
//
// The broker's metadata (topics, their IDs, partition counts, configs and
// each partition's leader/epoch/ISR) lives in registry (registry.go) and is
// persisted to <data-dir>/sluice-metadata.json before any log is created or
// after it is deleted, so a crash between the two is repaired at start-up.
// The partition state has the shape replication needs (leader, leader epoch,
// replicas, ISR, high watermark); on a single node the broker is every
// partition's leader and the ISR is itself, so HW = LEO.
//
// # Pinning
//
// numa.pinning=auto (pinning.go) pins each event loop's thread to a CPU of
// a plan made from the CPU/NUMA topology, runs one segstore committer per
// NUMA node the plan uses, pinned to that node's CPUs, and gives every
// partition a shard whose node picks its committer; /debug/shards
// (shards.go) shows it. Connections, not partitions, are bound to loops.
//
// # Concurrency and lock order
//
// registry.mu (topics map and metadata file) before partition.mu (watchers)
// before segstore's locks. Handlers hold no lock while answering.
package node
