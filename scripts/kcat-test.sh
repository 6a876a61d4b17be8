#!/usr/bin/env bash
# kcat (librdkafka) against a running broker: metadata, then 100,000 lines
# produced to a fresh one-partition topic and consumed back, exactly and in
# order.
#
# usage: scripts/kcat-test.sh HOST:PORT [TOPIC]
set -euo pipefail

addr=${1:?usage: $0 HOST:PORT [TOPIC]}
topic=${2:-kcat-$$-$RANDOM}
n=100000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "kcat-test: FAIL: $*" >&2; exit 1; }

# The broker answers metadata and names itself.
kcat -b "$addr" -L -m 10 >"$tmp/meta0" 2>&1 || fail "kcat -L: $(cat "$tmp/meta0")"
grep -Eq "broker [0-9]+ at $addr" "$tmp/meta0" || fail "kcat -L does not list broker $addr: $(cat "$tmp/meta0")"

# Produce: the topic is auto-created with num.partitions (1 by default);
# acks=all, and kcat exits non-zero if any message failed.
seq 1 "$n" >"$tmp/want"
kcat -P -b "$addr" -t "$topic" -X acks=all -X linger.ms=5 -m 30 <"$tmp/want" 2>"$tmp/produce.err" ||
  fail "kcat -P: $(cat "$tmp/produce.err")"

kcat -b "$addr" -L -t "$topic" -m 10 >"$tmp/meta1" 2>&1 || fail "kcat -L -t: $(cat "$tmp/meta1")"
grep -q "topic \"$topic\" with 1 partitions" "$tmp/meta1" || fail "kcat -L does not show $topic with 1 partition: $(cat "$tmp/meta1")"
grep -Eq "partition 0, leader [0-9]+, replicas: [0-9]+, isrs: [0-9]+" "$tmp/meta1" ||
  fail "kcat -L shows no leader for $topic/0: $(cat "$tmp/meta1")"

# Consume from the beginning to the end offset, then exit.
timeout 120 kcat -C -b "$addr" -t "$topic" -e -o beginning -q -m 30 >"$tmp/got" 2>"$tmp/consume.err" ||
  fail "kcat -C: $(cat "$tmp/consume.err")"
if ! cmp -s "$tmp/want" "$tmp/got"; then
  fail "consumed $(wc -l <"$tmp/got") lines, want $n; first difference: $(cmp "$tmp/want" "$tmp/got" 2>&1 | head -1)"
fi
echo "kcat-test: OK: $addr topic $topic: metadata, $n lines produced and consumed back in order"
