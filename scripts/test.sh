#!/usr/bin/env bash
# Runs sluice's whole test suite. On a fresh Debian machine it first installs
# the tools the tests drive (as root, through apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in kcat fio; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
# ip(8) for the network-partition test (it skips without root).
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# kafka-python and confluent-kafka for the interop test, in Debian's python.
/usr/bin/python3 -c 'import kafka' 2>/dev/null || need+=(python3-kafka)
/usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null || need+=(python3-confluent-kafka)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

go vet ./...
go test -count=1 -timeout 20m ./...
