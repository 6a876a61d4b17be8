#!/usr/bin/env bash
# Replication cost, side by side in one run: the same franz-go load from
# `sluice bench produce` (RECORDS records of 1 KiB, 6 partitions, acks=all,
# idempotent, log.flush.policy=ack on every node) against
#   single: one standalone `sluice serve`, RF=1;
#   cluster: three `sluice serve` nodes on this machine (broker + controller
#            each, scripts/cluster.sh's layout), RF=3, min.insync.replicas=2,
#            so each acknowledgement waits for the two followers to fetch
#            and fsync the batch too.
# They alternate within each run; the table shows medians over RUNS runs and
# the cluster/single throughput ratio. All processes share this machine's
# cores and disk: the cluster does three times the writes and fsyncs.
# "broker s/GB" is the brokers' CPU time (every node, io_uring workers
# included) per GB produced. "cpu %" is the machine's busy share (both vCPUs, iowait counted idle)
# while the producer ran. CLUSTER_OPTS adds --override flags to every
# cluster node (e.g. "--override log.follower.page.cache=keep").
# Memory is settled before each setup starts: the previous setup's data is
# deleted, then the script waits until the guest has handed the freed memory
# back to its host (free page reporting, as on this project's Firecracker
# VMs: until /sys/module/page_reporting/parameters/reported_kib stops growing
# for 3 s; elsewhere SETTLE seconds, default 5). Page-cache pages the guest
# reuses at once cost ~12x less than pages the host must fault in again (`dd`
# of 1 GB: 0.19 s vs 2.3 s of system time), so without the wait whichever
# setup starts right after a delete runs on warm memory and the ratio
# measures that instead of replication. SETTLE=0 skips the wait.
#   RUNS=3 RECORDS=300000 scripts/bench-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS=${RUNS:-3}
RECORDS=${RECORDS:-300000}
WORK=$(mktemp -d /tmp/sluice-bench-cluster.XXXXXX)
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
go build -o "$WORK/sluice" ./cmd/sluice

wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
  echo "nothing listens on $1" >&2; exit 1
}

start_single() {
  local port; port=$(freeport)
  rm -rf "$WORK/single"
  "$WORK/sluice" serve --listeners "127.0.0.1:$port" --log-dirs "$WORK/single" --metrics-listen "" \
    --override log.flush.policy=ack 2>"$WORK/single.err" &
  pids=($!)
  wait_port "$port"
  brokers="127.0.0.1:$port"
}

start_cluster() {
  local kp=() cp=() voters="" i
  for i in 1 2 3; do kp+=("$(freeport)"); cp+=("$(freeport)"); done
  for i in 1 2 3; do voters+="${voters:+,}$i@127.0.0.1:${cp[$((i-1))]}"; done
  pids=(); brokers=""
  for i in 1 2 3; do
    rm -rf "$WORK/n$i"
    "$WORK/sluice" serve --log-dirs "$WORK/n$i" --metrics-listen "" --override log.flush.policy=ack \
      --override node.id=$i --override controller.quorum.voters="$voters" \
      --override listeners="PLAINTEXT://127.0.0.1:${kp[$((i-1))]},CONTROLLER://127.0.0.1:${cp[$((i-1))]}" \
      --override controller.listener.names=CONTROLLER --override min.insync.replicas=2 ${CLUSTER_OPTS:-} 2>"$WORK/n$i.err" &
    pids+=($!)
    brokers+="${brokers:+,}127.0.0.1:${kp[$((i-1))]}"
  done
  for i in 0 1 2; do wait_port "${kp[$i]}"; done
  # Until all three brokers are registered and unfenced, RF=3 cannot be placed.
  for _ in $(seq 100); do
    n=$(kcat -L -b "127.0.0.1:${kp[0]}" 2>/dev/null | grep -c '^  broker ' || true)
    [ "$n" = 3 ] && return
    sleep 0.1
  done
  echo "the cluster did not reach 3 live brokers" >&2; cat "$WORK"/n*.err >&2; exit 1
}

# cputicks sums user+system clock ticks of every running broker process.
cputicks() {
  local p t=0 u s
  for p in "${pids[@]}"; do
    read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null || echo 0 0)
    t=$((t + u + s))
  done
  echo "$t"
}

stop_all() {
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  rm -rf "$WORK/single" "$WORK"/n[123]
  settle
}

settle() {
  local f=/sys/module/page_reporting/parameters/reported_kib prev cur quiet=0
  [ "${SETTLE:-5}" = 0 ] && return
  if [ ! -r "$f" ]; then sleep "${SETTLE:-5}"; return; fi
  prev=$(cat "$f")
  for _ in $(seq 120); do # at most 60 s
    sleep 0.5
    cur=$(cat "$f")
    if [ "$cur" = "$prev" ]; then quiet=$((quiet + 1)); [ "$quiet" -ge 6 ] && return; else quiet=0 prev=$cur; fi
  done
}

rows="$WORK/rows"
for run in $(seq "$RUNS"); do
  for setup in single cluster; do
    "start_$setup"
    rf=1; [ "$setup" = cluster ] && rf=3
    read -r _ a b c d e f g _ </proc/stat; t0=$((a+b+c+d+e+f+g)) i0=$((d+e))
    c0=$(cputicks)
    "$WORK/sluice" bench produce --brokers "$brokers" --topic bench --records "$RECORDS" --partitions 6 \
      --replication-factor "$rf" --record-size 1024 --acks all --json --quiet >"$WORK/p.json"
    read -r _ a b c d e f g _ </proc/stat; t1=$((a+b+c+d+e+f+g)) i1=$((d+e))
    busy=$(( 100 - 100 * (i1 - i0) / (t1 - t0) ))
    # broker CPU seconds (all nodes, io_uring workers included) per GB produced
    cpugb=$(python3 -c "print(($(cputicks) - $c0) / $(getconf CLK_TCK) / ($RECORDS * 1024 / 1e9))")
    printf '%s %s %s %s %s %s %s %s\n' "$setup" "$(field "$WORK/p.json" 'd["mb_per_s"]')" \
      "$(field "$WORK/p.json" 'd["records_per_s"]')" "$(field "$WORK/p.json" 'd["latency"]["p50_ms"]')" \
      "$(field "$WORK/p.json" 'd["latency"]["p99_ms"]')" "$(field "$WORK/p.json" 'd["errors"]')" "$busy" "$cpugb" | tee -a "$rows" >&2
    stop_all
  done
done
col() { awk -v b="$1" -v c="$2" '$1==b {print $c}' "$rows" | median; }
printf '%-8s %12s %12s %10s %10s %8s %8s %12s\n' setup "MB/s" "records/s" "p50 ms" "p99 ms" errors "cpu %" "broker s/GB"
for s in single cluster; do
  printf '%-8s %12.1f %12.0f %10.2f %10.2f %8.0f %8.0f %12.2f\n' "$s" "$(col $s 2)" "$(col $s 3)" "$(col $s 4)" "$(col $s 5)" "$(col $s 6)" "$(col $s 7)" "$(col $s 8)"
done
python3 -c "print('cluster/single throughput ratio (medians): %.2f' % ($(col cluster 2)/$(col single 2)))"
