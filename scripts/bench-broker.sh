#!/usr/bin/env bash
# Broker benchmark, side by side in one run: franz-go's kfake (in-memory, run
# as its own process) and `sluice serve` (log.flush.policy=ack: every batch is
# fdatasynced before its acknowledgement) under the same franz-go load from
# `sluice bench`: produce RECORDS records of 1 KiB with acks=all to 6
# partitions, then consume them from the start. On a 2-core box the client
# bounds throughput, so the figure of merit is the broker's own CPU seconds
# per GB (utime+stime of its pid across each phase, from /proc). Brokers
# alternate within each run; the table shows medians over RUNS runs.
#   RUNS=5 RECORDS=1000000 scripts/bench-broker.sh
# The producer is not idempotent (--idempotent=false) for both brokers:
# sluice does not offer producer ids yet, so kgo would fall back anyway.
#
# Two more columns explain sluice's produce figure. "fio s/GB": in the same
# run, fio writes the same number of bytes to a new file in the same
# directory (16 KiB writes, fdatasync per 1 MiB): the kernel's own CPU cost of
# appending to page cache and syncing, which no page-cache broker can go
# below. "io-wq s/GB": the part of sluice's CPU spent in io_uring's kernel
# workers (buffered writes and fsyncs punted by the kernel), from
# /proc/<pid>/task. On this VM new page-cache pages are very expensive and
# vary by 10x between runs (first touch of guest memory), so compare within
# a run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS=${RUNS:-3}
RECORDS=${RECORDS:-1000000}
WORK=$(mktemp -d /tmp/sluice-bench-broker.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

go build -o "$WORK/sluice" ./cmd/sluice
go build -o "$WORK/kfake-server" ./cmd/kfake-server

start_kfake() {
  local port=$1
  "$WORK/kfake-server" -ports "$port" -default-partitions 6 >"$WORK/kfake.out" 2>"$WORK/kfake.err" &
  pid=$!
  for _ in $(seq 100); do grep -q ready "$WORK/kfake.out" 2>/dev/null && return; sleep 0.1; done
  echo "kfake did not start" >&2; cat "$WORK/kfake.err" >&2; exit 1
}

start_sluice() {
  local port=$1
  rm -rf "$WORK/data"
  "$WORK/sluice" serve --listeners "127.0.0.1:$port" --log-dirs "$WORK/data" --metrics-listen "" \
    --override log.flush.policy=ack 2>"$WORK/sluice.err" &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.1
  done
  echo "sluice did not start" >&2; cat "$WORK/sluice.err" >&2; exit 1
}

# iowq_cpu PID: CPU seconds (utime+stime) of the process's io_uring worker
# threads (iou-wrk-*).
iowq_cpu() {
  python3 - "$1" <<'PY'
import os, sys
pid, tick = sys.argv[1], os.sysconf("SC_CLK_TCK")
iowq = 0
for t in os.listdir(f"/proc/{pid}/task"):
    try:
        comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
        f = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if comm.startswith("iou-wrk"):
        iowq += (int(f[11]) + int(f[12])) / tick
print(iowq)
PY
}

# fio_cpu BYTES: CPU seconds fio spends writing BYTES with fdatasync per MiB.
fio_cpu() {
  python3 - "$1" "$WORK/fio.dat" <<'PY'
import resource, subprocess, sys
subprocess.run(["fio", "--name=floor", "--rw=write", "--bs=16k", f"--size={sys.argv[1]}",
                "--fdatasync=64", "--ioengine=psync", f"--filename={sys.argv[2]}",
                "--output-format=terse"], check=True, stdout=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)
PY
  rm -f "$WORK/fio.dat"
}

rows="$WORK/rows"
unclean=0
for run in $(seq "$RUNS"); do
  for broker in kfake sluice; do
    port=$(freeport)
    "start_$broker" "$port"
    common=(--brokers "127.0.0.1:$port" --topic bench --records "$RECORDS" --broker-pid "$pid" --json --quiet)
    iowq0=$(iowq_cpu "$pid")
    "$WORK/sluice" bench produce "${common[@]}" --partitions 6 --record-size 1024 --acks all \
      --idempotent=false >"$WORK/p.json"
    iowq1=$(iowq_cpu "$pid")
    gb=$(field "$WORK/p.json" 'd["bytes"]/1e9')
    iowq=$(python3 -c "print(($iowq1-$iowq0)/$gb)")
    "$WORK/sluice" bench consume "${common[@]}" >"$WORK/c.json"
    kill -TERM "$pid"
    status=0; wait "$pid" || status=$?
    if [ "$status" -ne 0 ]; then
      echo "run $run: $broker exited with status $status after SIGTERM, not a clean shutdown; its stderr:" >&2
      cat "$WORK/$broker.err" >&2
      unclean=$((unclean + 1))
    fi
    printf '%s %s %s %s %s %s %s\n' "$broker" \
      "$(field "$WORK/p.json" 'd["mb_per_s"]')" "$(field "$WORK/p.json" 'd["broker_cpu"]["seconds_per_gb"]')" \
      "$(field "$WORK/c.json" 'd["mb_per_s"]')" "$(field "$WORK/c.json" 'd["broker_cpu"]["seconds_per_gb"]')" \
      "$(field "$WORK/p.json" 'd["records_per_s"]')" "$iowq" | tee -a "$rows" >&2
  done
  fio_s=$(fio_cpu "$(field "$WORK/p.json" 'd["bytes"]')")
  echo "fio $(python3 -c "print($fio_s/$gb)")" | tee -a "$rows" >&2
done

col() { awk -v b="$1" -v c="$2" '$1==b {print $c}' "$rows" | median; }
printf '%-8s %14s %14s %16s %12s %14s %16s\n' broker "produce MB/s" "produce rec/s" "produce CPU s/GB" "io-wq s/GB" "consume MB/s" "consume CPU s/GB"
for b in kfake sluice; do
  printf '%-8s %14.1f %14.0f %16.3f %12.3f %14.1f %16.3f\n' "$b" "$(col $b 2)" "$(col $b 6)" "$(col $b 3)" "$(col $b 7)" "$(col $b 4)" "$(col $b 5)"
done
printf 'fio, same bytes, 16 KiB writes + fdatasync/MiB, new file: %.3f CPU s/GB (median)\n' "$(col fio 2)"
if [ "$unclean" -ne 0 ]; then
  echo "WARNING: $unclean broker shutdown(s) were not clean (see above); the figures may be suspect" >&2
  exit 1
fi
