#!/usr/bin/env bash
# kcat -G (librdkafka's balanced group consumer) against a running broker:
# TOPIC (which must already have at least 2 partitions) gets 20,000 lines,
# then two kcat -G members of one group consume it together. Every line must
# be consumed (at-least-once), by both members between them (the partitions
# were shared). The caller checks the group's committed offsets.
#
# usage: scripts/kcat-group-test.sh HOST:PORT TOPIC [GROUP]
set -euo pipefail

addr=${1:?usage: $0 HOST:PORT TOPIC [GROUP]}
topic=${2:?usage: $0 HOST:PORT TOPIC [GROUP]}
group=${3:-kcat-group-$$-$RANDOM}
n=20000
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

fail() { echo "kcat-group-test: FAIL: $*" >&2; exit 1; }

seq 1 "$n" >"$tmp/want"
# Keyed (key = value) so librdkafka's hash partitioner spreads the lines
# over every partition.
awk '{print $0 ":" $0}' "$tmp/want" |
  kcat -P -b "$addr" -t "$topic" -K: -X acks=all -X linger.ms=5 -m 30 2>"$tmp/produce.err" ||
  fail "kcat -P: $(cat "$tmp/produce.err")"

# Both members join before the group's initial rebalance delay
# (group.initial.rebalance.delay.ms) ends, so the first generation has both.
# -e: each exits once all partitions it was assigned reached their end.
for m in 1 2; do
  timeout 90 kcat -b "$addr" -G "$group" -X auto.offset.reset=earliest -X enable.auto.commit=true \
    -X auto.commit.interval.ms=200 -e -q -m 30 "$topic" >"$tmp/got$m" 2>"$tmp/err$m" &
  pids+=($!)
done
for i in 0 1; do
  wait "${pids[$i]}" || fail "member $((i + 1)) exited with an error: $(cat "$tmp/err$((i + 1))")"
done

sort -n -u "$tmp/got1" "$tmp/got2" >"$tmp/union"
cmp -s "$tmp/want" "$tmp/union" || fail "the two members consumed $(wc -l <"$tmp/union") distinct lines, want $n"
c1=$(wc -l <"$tmp/got1")
c2=$(wc -l <"$tmp/got2")
[ "$c1" -gt 0 ] && [ "$c2" -gt 0 ] || fail "one member consumed nothing ($c1 and $c2 lines): the partitions were not shared"

echo "kcat-group-test: OK: $addr topic $topic: $n lines consumed by group $group of 2 kcat -G members ($c1 + $c2 lines)"
