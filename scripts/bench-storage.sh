#!/usr/bin/env bash
# Storage benchmark, side by side in one run: the disk's own limit measured by
# fio (sequential buffered write, fdatasync every 1 MiB) and sluice's
# segstore append benchmark (16 KiB batches, 1/64/1000 partitions, each flush
# policy). Each run measures fio right before the Go benchmarks, so every
# ratio compares neighbours in time (shared virtual disks drift a lot); the
# table shows medians over RUNS runs of the value and of that per-run ratio.
#   RUNS=5 BENCHTIME=3s BENCH='BenchmarkAppend/policy=ack/partitions=(1|64)$' scripts/bench-storage.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS=${RUNS:-3}
BENCHTIME=${BENCHTIME:-3s}
BENCH=${BENCH:-BenchmarkAppend}
FIO_SIZE=${FIO_SIZE:-1g}
DIR=${BENCH_DIR:-$(mktemp -d /tmp/sluice-bench.XXXXXX)}
out=$(mktemp)
trap 'rm -rf "$DIR/fio.dat" "$out"' EXIT

fio_runs=()
for i in $(seq "$RUNS"); do
  bw=$(fio --name=seq --rw=write --bs=16k --size="$FIO_SIZE" --fdatasync=64 --ioengine=psync \
        --filename="$DIR/fio.dat" --output-format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/1e6)')
  fio_runs+=("$bw")
  rm -f "$DIR/fio.dat"
  go test -run '^$' -bench "$BENCH" -benchtime "$BENCHTIME" ./segstore/ | grep '^BenchmarkAppend' |
    awk -v f="$bw" '{print $0, f/1, "fio"}' >>"$out"
done
fio_mb=$(printf '%s\n' "${fio_runs[@]}" | median)
echo "fio seq write + fdatasync/1MiB: median $fio_mb MB/s (runs: ${fio_runs[*]})"
printf '%-42s %10s %10s %12s %14s %10s\n' benchmark MB/s ratio fsyncs/s appends/fsync allocs/op
for name in $(awk '{print $1}' "$out" | sort -u); do
  mb=$(awk -v n="$name" '$1==n {for(i=1;i<=NF;i++) if($(i+1)=="MB/s") print $i}' "$out" | median)
  fs=$(awk -v n="$name" '$1==n {for(i=1;i<=NF;i++) if($(i+1)=="fsyncs/s") print $i}' "$out" | median)
  ap=$(awk -v n="$name" '$1==n {v="-"; for(i=1;i<=NF;i++) if($(i+1)=="appends/fsync") v=$i; print v}' "$out" | median)
  al=$(awk -v n="$name" '$1==n {for(i=1;i<=NF;i++) if($(i+1)=="allocs/op") print $i}' "$out" | median)
  ratio=$(awk -v n="$name" '$1==n {for(i=1;i<=NF;i++) if($(i+1)=="MB/s") m=$i; printf "%.3f\n", m/$(NF-1)}' "$out" | median)
  printf '%-42s %10s %10s %12s %14s %10s\n' "${name%-*}" "$mb" "$ratio" "$fs" "$ap" "$al"
done
