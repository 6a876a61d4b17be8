#!/usr/bin/env bash
# numa.pinning=auto vs off, crossed with io.engine=uring vs sync: the same
# franz-go load as scripts/bench-tuning.sh (sluice bench produce, 1 KiB
# records, acks=all, 6 partitions, then consume from the start) against
# `sluice serve` in each of the four combinations, interleaved within each
# run in rotating order after an unrecorded warm-up, medians (and per-run
# ranges) over RUNS runs. Broker CPU is utime+stime of the broker process per
# GB moved (sluice bench --broker-pid). Each variant starts only once the
# machine has been idle for 2 s (wait_idle).
#
# Each auto run also asks GET /debug/shards whether the loops really were
# pinned, so a host that refused (and fell back to unpinned) cannot pass for
# a pinned measurement. On a single-NUMA-node machine this measures the cost
# of pinning itself (locked threads, one CPU per loop), not NUMA locality.
#   RUNS=3 RECORDS=1000000 scripts/bench-pinning.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS=${RUNS:-3}
RECORDS=${RECORDS:-1000000}
WORK=$(mktemp -d /tmp/sluice-bench-pinning.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
go build -o "$WORK/sluice" ./cmd/sluice

# name | sluice serve arguments
VARIANTS=(
  "pinning auto, uring|--override numa.pinning=auto --override io.engine=uring"
  "pinning off, uring|--override numa.pinning=off --override io.engine=uring"
  "pinning auto, sync|--override numa.pinning=auto --override io.engine=sync"
  "pinning off, sync|--override numa.pinning=off --override io.engine=sync"
)


rows="$WORK/rows"
for run in $(seq "$RUNS"); do
  n=${#VARIANTS[@]}
  for k in -1 $(seq 0 $((n - 1))); do
    i=0 tag=warmup
    if ((k >= 0)); then i=$(((k + run) % n)); tag=v$i; fi
    IFS='|' read -r name serve_args <<<"${VARIANTS[$i]}"
    wait_idle
    port=$(freeport) mport=$(freeport)
    rm -rf "$WORK/data"
    # shellcheck disable=SC2086
    "$WORK/sluice" serve --listeners "127.0.0.1:$port" --log-dirs "$WORK/data" --metrics-listen "127.0.0.1:$mport" \
      $serve_args 2>"$WORK/serve.err" &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$mport/debug/shards" >"$WORK/shards.json"
    pinned=$(field "$WORK/shards.json" 'd["pinning"]')
    if [[ $serve_args == *numa.pinning=auto* && $pinned != auto ]]; then
      echo "variant $name: the broker did not pin: $(field "$WORK/shards.json" 'd.get("reason")')" >&2
      exit 1
    fi
    common=(--brokers "127.0.0.1:$port" --topic t --records "$RECORDS" --broker-pid "$pid" --json --quiet)
    "$WORK/sluice" bench produce "${common[@]}" --partitions 6 --record-size 1024 --acks all \
      --idempotent=false >"$WORK/p.json"
    "$WORK/sluice" bench consume "${common[@]}" >"$WORK/c.json"
    if ((k < 0 && run == 1)); then cp "$WORK/shards.json" "$WORK/first-shards.json"; fi
    kill -TERM "$pid"
    if ! wait "$pid"; then echo "broker exited uncleanly in variant $name" >&2; cat "$WORK/serve.err" >&2; exit 1; fi
    echo "$tag $(field "$WORK/p.json" 'd["mb_per_s"]') $(field "$WORK/p.json" 'd["broker_cpu"]["seconds_per_gb"]') $(field "$WORK/p.json" 'd["latency"]["p99_ms"]') $(field "$WORK/c.json" 'd["mb_per_s"]') $(field "$WORK/c.json" 'd["broker_cpu"]["seconds_per_gb"]')" | tee -a "$rows" >&2
  done
done

col() { awk -v k="$1" -v c="$2" '$1==k {print $c}' "$rows" | median; }
span() { awk -v k="$1" -v c="$2" -v f="$3" '$1==k {v=$c; if (n==0||v<lo) lo=v; if (n==0||v>hi) hi=v; n++} END {printf f "–" f, lo, hi}' "$rows"; }
printf 'plan (auto, from /debug/shards of the first run): %s\n\n' "$(field "$WORK/first-shards.json" 'd["plan"]')"
printf '| variant | produce MB/s | produce broker CPU s/GB | produce p99 ms | consume MB/s | consume broker CPU s/GB |\n|---|---|---|---|---|---|\n'
for i in "${!VARIANTS[@]}"; do
  IFS='|' read -r name _ <<<"${VARIANTS[$i]}"
  printf '| %s | %.0f (%s) | %.2f (%s) | %.0f | %.0f (%s) | %.3f (%s) |\n' "$name" \
    "$(col v$i 2)" "$(span v$i 2 %.0f)" "$(col v$i 3)" "$(span v$i 3 %.2f)" "$(col v$i 4)" \
    "$(col v$i 5)" "$(span v$i 5 %.0f)" "$(col v$i 6)" "$(span v$i 6 %.3f)"
done
