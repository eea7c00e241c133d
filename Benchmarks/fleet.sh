#!/usr/bin/env bash
# The fleet measurements of docs/SCALING.md on this machine: a private MariaDB primary with two
# replicas (scripts/mariadb-server.sh: binary log, GTID, parallel optimistic replication), then
#   - bench fleet with every read on the primary, and through the replicas (MACHINES machines ×
#     PROCESSES follower processes, WRITERS writers at RATE sets/s, poll INTERVAL, SECONDS long);
#   - bench fleet with one process per machine and with PROCESSES (statements must not grow with P);
#   - bench bootstrap of KEYS keys (gzip snapshot, restore, catch-up of 10,000 records).
# Every line it prints is a JSON measurement, or a "==" heading naming the command that printed it.
# Usage: Benchmarks/fleet.sh [MACHINES] [PROCESSES] [INTERVAL] [SECONDS] [BOOTSTRAP_KEYS...]
#   default: 32 4 0.25 30 1000000 10000000
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin
MACHINES=${1:-32}
PROCESSES=${2:-4}
INTERVAL=${3:-0.25}
SECONDS_LONG=${4:-30}
shift $(( $# < 4 ? $# : 4 ))
if [ $# -gt 0 ]; then KEYS=("$@"); else KEYS=(1000000 10000000); fi
WRITERS=${WRITERS:-2}
RATE=${RATE:-20}

bash scripts/install-dependencies.sh --server >/dev/null
swift build -c release --product whycache-tool >/dev/null
tool=.build/release/whycache-tool

script=$PWD/scripts/mariadb-server.sh
dirs=()
stop_servers() {
    local dir
    for dir in ${dirs[@]+"${dirs[@]}"}; do "$script" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; done
}
trap stop_servers EXIT
primary_dir=$(mktemp -d); primary_port=$("$script" free-port)
"$script" start "$primary_dir" "$primary_port" >/dev/null
replica_ports=()
for _ in 1 2; do
    dir=$(mktemp -d); port=$("$script" free-port)
    while [ "$port" = "$primary_port" ] || [[ " ${replica_ports[*]-} " == *" $port "* ]]; do port=$("$script" free-port); done
    "$script" start-replica "$dir" "$port" "$primary_port" >/dev/null
    dirs=("$dir" ${dirs[@]+"${dirs[@]}"}); replica_ports+=("$port")
done
dirs+=("$primary_dir")
export WHYCACHE_MYSQL_PASSWORD=whycache-test-password
primary="mysql://whycache@127.0.0.1:$primary_port/whycache_test"
replicas="$primary?replica=127.0.0.1:${replica_ports[0]}&replica=127.0.0.1:${replica_ports[1]}"

fleet() {
    echo "== whycache-tool bench fleet --store $1 --machines $2 --processes $3 --writers $WRITERS --write-rate $RATE --interval $INTERVAL --seconds $4"
    "$tool" bench fleet --store "$1" --machines "$2" --processes "$3" --writers "$WRITERS" --write-rate "$RATE" \
        --interval "$INTERVAL" --seconds "$4" 2>/dev/null
}
fleet "$replicas" "$MACHINES" "$PROCESSES" "$SECONDS_LONG"
fleet "$primary" "$MACHINES" "$PROCESSES" "$SECONDS_LONG"
fleet "$replicas" "$MACHINES" 1 "$SECONDS_LONG"
for keys in "${KEYS[@]}"; do
    echo "== whycache-tool bench bootstrap --keys $keys"
    "$tool" bench bootstrap --keys "$keys" --directory "${BENCH_DIR:-/dev/shm}"
done
