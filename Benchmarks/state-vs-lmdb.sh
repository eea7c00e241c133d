#!/usr/bin/env bash
# Runs workload W against the shared-state file and against LMDB (the anchor
# benchmark in ../shared/anchors, or ANCHORS=dir) in the same run, on the same
# file system, and prints both. Usage: Benchmarks/state-vs-lmdb.sh [N] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
SECONDS_PER_RUN=${2:-3}
ANCHORS=${ANCHORS:-../shared/anchors}
DIR=${BENCH_DIR:-/dev/shm}

if [ ! -f /usr/include/lmdb.h ]; then
    [ "$(id -u)" -eq 0 ] || { echo "please install liblmdb-dev" >&2; exit 1; }
    apt-get install -y -qq liblmdb-dev >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work" "$DIR/whycache-lmdb-$$"' EXIT
gcc -O2 -Wall -o "$work/bench_lmdb" "$ANCHORS/bench_lmdb.c" -llmdb

swift build -c release --product whycache-tool >/dev/null
echo "== WhyCache (whycache-tool bench state --keys $N)"
.build/release/whycache-tool bench state --keys "$N" --seconds "$SECONDS_PER_RUN" --directory "$DIR"

echo "== LMDB (anchor benchmark, same workload, same folder)"
db="$DIR/whycache-lmdb-$$"
"$work/bench_lmdb" load "$db" "$N" 0 0
"$work/bench_lmdb" load "$db" "$N" 1000 0 | head -1
"$work/bench_lmdb" load "$db" "$N" 0 0 >/dev/null
"$work/bench_lmdb" scan "$db" | tail -3
"$work/bench_lmdb" run "$db" "$N" 1 0 "$SECONDS_PER_RUN" 0
"$work/bench_lmdb" run "$db" "$N" 2 0 "$SECONDS_PER_RUN" 0
"$work/bench_lmdb" run "$db" "$N" 1 1 "$SECONDS_PER_RUN" 0
