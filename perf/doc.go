// Package perf is the load generator behind `sluice bench`. It talks to any
// Kafka-compatible broker through franz-go (kgo for the real-client
// workloads, kmsg on plain TCP connections for the raw mode), so the same
// invocation measures sluice, Apache Kafka, Redpanda or kfake.
//
// # What it owns
//
//   - Workload: one benchmark's knobs (mode, sizes, partitions, acks, rate...).
//   - Runners: produce, consume and e2e on kgo; raw, which encodes Produce
//     requests once with kmsg and replays them over pipelined connections so
//     the broker, not the client, is what saturates.
//   - Timing: fixed-rate runs are open loop. Every record gets an intended
//     send time from a schedule (start + i/rate) and its latency is measured
//     from that time, not from when the client got around to sending it, so a
//     broker stall shows up in the percentiles instead of silently slowing the
//     sender down (coordinated omission).
//   - Reporting: HDR histograms, a per-second timeline, broker and client CPU
//     seconds per GB, a one-line progress display, JSON, plots (gonum/plot)
//     and a YAML suite runner that writes a Markdown table.
//
// # Concurrency
//
// Run and RunSuite are synchronous and may be called from any goroutine; two
// concurrent runs share nothing but the broker. Inside a run, record
// callbacks from kgo goroutines and raw connection readers write to the
// recorder, whose counters are atomics and whose histograms are sharded,
// each shard behind its own mutex. Only the sampler goroutine appends to the
// timeline; it is read after the sampler has stopped. Lock order: a recorder
// takes at most one shard lock at a time.
//
// # Units
//
// Bytes and MB/s count record payload (key + value) only, never protocol
// overhead, so figures are comparable across modes and brokers. 1 MB is
// 10^6 bytes and 1 GB is 10^9 bytes. Latencies are recorded in microseconds
// and reported in milliseconds.
package perf
