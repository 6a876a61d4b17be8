#!/usr/bin/env bash
# Starts a local 3-node sluice cluster (every node broker + controller) in
# one command and keeps it in the foreground; ^C stops all three cleanly.
#
#   scripts/cluster.sh                 # data in ./sluice-cluster/node{1,2,3}
#   DIR=/tmp/c BASE=9092 scripts/cluster.sh --override log.flush.policy=os
#
# Kafka ports: BASE, BASE+1, BASE+2 (clients bootstrap from any of them);
# controller ports: BASE+100.. ; metrics: BASE+200.. . Extra arguments go to
# every `sluice serve`. SLUICE (the binary) defaults to a fresh `go build`.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DIR:-sluice-cluster}
BASE=${BASE:-9092}
N=${N:-3}
if [[ -z "${SLUICE:-}" ]]; then
	SLUICE=$(mktemp -d)/sluice
	go build -o "$SLUICE" ./cmd/sluice
fi
voters=""
for i in $(seq 1 "$N"); do
	voters+="${voters:+,}$i@127.0.0.1:$((BASE + 99 + i))"
done
pids=()
stop() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait || true
}
trap stop INT TERM EXIT
mkdir -p "$DIR"
for i in $(seq 1 "$N"); do
	mkdir -p "$DIR/node$i"
	"$SLUICE" serve \
		--override node.id="$i" \
		--override controller.quorum.voters="$voters" \
		--override listeners="PLAINTEXT://127.0.0.1:$((BASE + i - 1)),CONTROLLER://127.0.0.1:$((BASE + 99 + i))" \
		--override controller.listener.names=CONTROLLER \
		--override log.dirs="$DIR/node$i" \
		--override metrics.listen="127.0.0.1:$((BASE + 199 + i))" \
		"$@" >"$DIR/node$i/serve.log" 2>&1 &
	pids+=($!)
done
echo "sluice cluster: bootstrap 127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)); logs in $DIR/node*/serve.log; ^C stops it"
wait -n "${pids[@]}" || true
echo "a node exited; stopping the cluster (see $DIR/node*/serve.log)" >&2
