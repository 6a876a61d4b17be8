#!/usr/bin/env bash
# Tuning experiments: the same franz-go load (sluice bench produce, 1 KiB
# records, acks=all, 6 partitions, then consume from the start) against
# `sluice serve` with one knob changed at a time, variants interleaved within
# each run, medians over RUNS runs. Each run also measures the machine's own
# limits next to them: fio (16 KiB writes + fdatasync per MiB, same bytes)
# and iperf3 over loopback. Results feed docs/tuning.md.
#
# Order matters on this VM: right after fio frees its file, new page-cache
# pages cost several times more CPU (first touch of guest memory the host
# reclaimed), so each run starts with an unrecorded warm-up produce, measures
# fio and iperf3 last, and rotates the order of the variants.
#   RUNS=3 RECORDS=1000000 scripts/bench-tuning.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS=${RUNS:-3}
RECORDS=${RECORDS:-1000000}
WORK=$(mktemp -d /tmp/sluice-bench-tuning.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
go build -o "$WORK/sluice" ./cmd/sluice

# name | sluice serve arguments | sluice bench produce arguments
VARIANTS=(
  "baseline (ack, uring, 2 loops, linger 10ms, 1MiB batches)||"
  "io.engine=sync|--override io.engine=sync|"
  "log.flush.policy=os|--override log.flush.policy=os|"
  "log.flush.policy=interval (1 s)|--override log.flush.policy=interval --override log.flush.interval.ms=1000|"
  "num.network.threads=1|--override num.network.threads=1|"
  "client linger 0|--|--linger 0s"
  "client batch 16 KiB||--batch-bytes 16384"
)

rows="$WORK/rows"
for run in $(seq "$RUNS"); do
  n=${#VARIANTS[@]}
  for k in -1 $(seq 0 $((n - 1))); do
    i=0 tag=warmup
    if ((k >= 0)); then i=$(((k + run) % n)); tag=v$i; fi
    IFS='|' read -r name serve_args bench_args <<<"${VARIANTS[$i]}"
    [[ $serve_args == "--" ]] && serve_args=""
    port=$(freeport)
    rm -rf "$WORK/data"
    # shellcheck disable=SC2086
    "$WORK/sluice" serve --listeners "127.0.0.1:$port" --log-dirs "$WORK/data" --metrics-listen "" \
      $serve_args 2>"$WORK/serve.err" &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    common=(--brokers "127.0.0.1:$port" --topic t --records "$RECORDS" --broker-pid "$pid" --json --quiet)
    # shellcheck disable=SC2086
    "$WORK/sluice" bench produce "${common[@]}" --partitions 6 --record-size 1024 --acks all \
      --idempotent=false $bench_args >"$WORK/p.json"
    "$WORK/sluice" bench consume "${common[@]}" >"$WORK/c.json"
    kill -TERM "$pid"
    if ! wait "$pid"; then echo "broker exited uncleanly in variant $name" >&2; cat "$WORK/serve.err" >&2; exit 1; fi
    echo "$tag $(field "$WORK/p.json" 'd["mb_per_s"]') $(field "$WORK/p.json" 'd["broker_cpu"]["seconds_per_gb"]') $(field "$WORK/p.json" 'd["latency"]["p99_ms"]') $(field "$WORK/c.json" 'd["mb_per_s"]') $(field "$WORK/c.json" 'd["broker_cpu"]["seconds_per_gb"]')" | tee -a "$rows" >&2
  done
  gbytes=$((RECORDS * 1024))
  fio_mb=$(fio --name=floor --rw=write --bs=16k --size="$gbytes" --fdatasync=64 --ioengine=psync \
    --filename="$WORK/fio.dat" --output-format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/1e6)')
  rm -f "$WORK/fio.dat"
  iperf3 -s -1 -p 5299 >/dev/null 2>&1 & sleep 0.3
  ip_mb=$(iperf3 -c 127.0.0.1 -p 5299 -t 3 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8e6)')
  echo "limits fio=$fio_mb iperf3=$ip_mb" | tee -a "$rows" >&2
done

col() { awk -v k="$1" -v c="$2" '$1==k {print $c}' "$rows" | median; }
lim() { grep '^limits' "$rows" | sed "s/.*$1=\([0-9.]*\).*/\1/" | median; }
printf 'machine limits (medians): fio 16 KiB + fdatasync/MiB %.0f MB/s, iperf3 loopback %.0f MB/s\n\n' "$(lim fio)" "$(lim iperf3)"
printf '| variant | produce MB/s | produce broker CPU s/GB | produce p99 ms | consume MB/s | consume broker CPU s/GB |\n|---|---|---|---|---|---|\n'
for i in "${!VARIANTS[@]}"; do
  IFS='|' read -r name _ _ <<<"${VARIANTS[$i]}"
  printf '| %s | %.0f | %.3f | %.1f | %.0f | %.3f |\n' "$name" "$(col v$i 2)" "$(col v$i 3)" "$(col v$i 4)" "$(col v$i 5)" "$(col v$i 6)"
done
