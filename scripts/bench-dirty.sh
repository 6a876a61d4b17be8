#!/usr/bin/env bash
# Page-cache writeback limits under log.flush.policy=os: the same franz-go
# produce load as scripts/bench-tuning.sh (sluice bench produce, 1 KiB records,
# acks=all, 6 partitions) against `sluice serve --override
# log.flush.policy=os`, with the host's vm.dirty_* settings and with
# vm.dirty_background_bytes / vm.dirty_bytes set low enough to bite. The ratio
# forms cannot: on a 24 GiB machine 10% / 20% is more than a 1 GB run writes.
# Variants interleaved in rotating order after an unrecorded warm-up, medians
# and ranges over RUNS runs, fio floor (16 KiB writes + fdatasync per MiB, same
# bytes, host settings) measured last in each run.
#
# Besides broker CPU (utime+stime of the broker per GB, --broker-pid) it
# records machine CPU per GB (all busy jiffies in /proc/stat during the
# produce, client included): writeback done by the kernel's flusher threads is
# not charged to the broker. Peak Dirty+Writeback from /proc/meminfo shows the
# limit took effect. Right after the produce it times a `sync` (and counts its
# CPU in a second machine column): with loose limits most of the data is still
# only in memory when the producer has its acks, and writing it out is a cost
# the produce figures alone do not show.
#
# Needs root (writes /proc/sys/vm). The original values are printed before
# and after, restored between variants and on any exit.
#   RUNS=3 RECORDS=1000000 scripts/bench-dirty.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS=${RUNS:-3}
RECORDS=${RECORDS:-1000000}
WORK=$(mktemp -d /tmp/sluice-bench-dirty.XXXXXX)
VM=/proc/sys/vm
KNOBS=(dirty_background_ratio dirty_ratio dirty_background_bytes dirty_bytes)
declare -A ORIG
for k in "${KNOBS[@]}"; do ORIG[$k]=$(<"$VM/$k"); done

show() { local s=""; for k in "${KNOBS[@]}" dirty_expire_centisecs dirty_writeback_centisecs; do s+=" $k=$(<"$VM/$k")"; done; echo "vm:$s" >&2; }

# restore writes back the original form of each pair: writing a *_ratio zeroes
# its *_bytes twin and the other way round, so only the non-zero one is set.
restore() {
  if ((ORIG[dirty_background_bytes] > 0)); then echo "${ORIG[dirty_background_bytes]}" >"$VM/dirty_background_bytes"
  else echo "${ORIG[dirty_background_ratio]}" >"$VM/dirty_background_ratio"; fi
  if ((ORIG[dirty_bytes] > 0)); then echo "${ORIG[dirty_bytes]}" >"$VM/dirty_bytes"
  else echo "${ORIG[dirty_ratio]}" >"$VM/dirty_ratio"; fi
}

# set_dirty BG LIMIT sets the byte forms, or restores the host's if BG is "host".
set_dirty() {
  if [[ $1 == host ]]; then restore; return; fi
  echo "$2" >"$VM/dirty_bytes"
  echo "$1" >"$VM/dirty_background_bytes"
}

echo "before:" >&2; show
trap 'exit 130' INT TERM
trap 'kill $(jobs -p) 2>/dev/null || true; restore; echo "after (restored):" >&2; show; rm -rf "$WORK"' EXIT
restore # fail now, before any measurement, if /proc/sys/vm is not writable
go build -o "$WORK/sluice" ./cmd/sluice

# name | dirty_background_bytes dirty_bytes ("host" = the values found at start)
MiB=$((1 << 20))
VARIANTS=(
  "host defaults (ratio ${ORIG[dirty_background_ratio]} / ${ORIG[dirty_ratio]})|host"
  "background 64 MiB, limit 256 MiB|$((64 * MiB)) $((256 * MiB))"
  "background 16 MiB, limit 64 MiB|$((16 * MiB)) $((64 * MiB))"
)


# busy prints the machine's busy jiffies so far (all CPUs; idle and iowait excluded).
busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }

# peak_dirty samples Dirty+Writeback every 0.1 s until the file $WORK/stop
# exists, then writes the peak in MiB to $WORK/peak.
peak_dirty() {
  local peak=0 v
  while [[ ! -e $WORK/stop ]]; do
    v=$(awk '/^(Dirty|Writeback):/ {s+=$2} END {print int(s/1024)}' /proc/meminfo)
    ((v > peak)) && peak=$v
    sleep 0.1
  done
  echo "$peak" >"$WORK/peak"
}

hz=$(getconf CLK_TCK)
gb=$(python3 -c "print($RECORDS*1024/1e9)")
rows="$WORK/rows"
for run in $(seq "$RUNS"); do
  n=${#VARIANTS[@]}
  for k in -1 $(seq 0 $((n - 1))); do
    i=0 tag=warmup
    if ((k >= 0)); then i=$(((k + run) % n)); tag=v$i; fi
    IFS='|' read -r name limits <<<"${VARIANTS[$i]}"
    rm -rf "$WORK/data" "$WORK/stop"
    restore; sync # start every variant with nothing dirty, written back under the host's settings
    # shellcheck disable=SC2086
    set_dirty $limits
    wait_idle 10 # 20 s at most: keeps a run short
    port=$(freeport)
    "$WORK/sluice" serve --listeners "127.0.0.1:$port" --log-dirs "$WORK/data" --metrics-listen "" \
      --override log.flush.policy=os 2>"$WORK/serve.err" &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    peak_dirty &
    sampler=$!
    b0=$(busy)
    "$WORK/sluice" bench produce --brokers "127.0.0.1:$port" --topic t --records "$RECORDS" --broker-pid "$pid" \
      --json --quiet --partitions 6 --record-size 1024 --acks all --idempotent=false >"$WORK/p.json"
    b1=$(busy)
    touch "$WORK/stop"
    wait "$sampler"
    # What the run left dirty is what is not yet on disk: time writing it out.
    t0=$(date +%s.%N); sync; t1=$(date +%s.%N)
    b2=$(busy)
    kill -TERM "$pid"
    if ! wait "$pid"; then echo "broker exited uncleanly in variant $name" >&2; cat "$WORK/serve.err" >&2; exit 1; fi
    mcpu=$(python3 -c "print(($b1-$b0)/$hz/$gb, ($b2-$b0)/$hz/$gb, $t1-$t0)")
    echo "$tag $(field "$WORK/p.json" 'd["mb_per_s"]') $(field "$WORK/p.json" 'd["broker_cpu"]["seconds_per_gb"]') $(field "$WORK/p.json" 'd["latency"]["p99_ms"]') $mcpu $(<"$WORK/peak")" | tee -a "$rows" >&2
  done
  rm -rf "$WORK/data"
  restore; sync
  fio_mb=$(fio --name=floor --rw=write --bs=16k --size=$((RECORDS * 1024)) --fdatasync=64 --ioengine=psync \
    --filename="$WORK/fio.dat" --output-format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/1e6)')
  rm -f "$WORK/fio.dat"
  echo "limits fio=$fio_mb" | tee -a "$rows" >&2
done

col() { awk -v k="$1" -v c="$2" '$1==k {print $c}' "$rows" | median; }
span() { awk -v k="$1" -v c="$2" -v f="$3" '$1==k {v=$c; if (n==0||v<lo) lo=v; if (n==0||v>hi) hi=v; n++} END {printf f "–" f, lo, hi}' "$rows"; }
fios=$(grep '^limits' "$rows" | sed 's/.*fio=//')
printf 'fio 16 KiB + fdatasync/MiB (median, runs): %.0f MB/s (%s)\n\n' "$(median <<<"$fios")" \
  "$(printf '%.0f ' $fios)"
printf '| vm.dirty_* | produce MB/s | produce broker CPU s/GB | produce p99 ms | machine CPU s/GB | machine CPU s/GB incl. sync | sync after produce s | peak dirty+writeback MiB |\n|---|---|---|---|---|---|---|---|\n'
for i in "${!VARIANTS[@]}"; do
  IFS='|' read -r name _ <<<"${VARIANTS[$i]}"
  printf '| %s | %.0f (%s) | %.2f (%s) | %.0f (%s) | %.2f (%s) | %.2f (%s) | %.2f (%s) | %.0f (%s) |\n' "$name" \
    "$(col v$i 2)" "$(span v$i 2 %.0f)" "$(col v$i 3)" "$(span v$i 3 %.2f)" "$(col v$i 4)" "$(span v$i 4 %.0f)" \
    "$(col v$i 5)" "$(span v$i 5 %.2f)" "$(col v$i 6)" "$(span v$i 6 %.2f)" "$(col v$i 7)" "$(span v$i 7 %.2f)" \
    "$(col v$i 8)" "$(span v$i 8 %.0f)"
done
