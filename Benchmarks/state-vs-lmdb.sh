#!/usr/bin/env bash
# Runs workload W against the shared-state file, against LMDB and against a
# private in-process hash table of the same entries (the anchor benchmarks
# bench_lmdb and bench_phys in ../shared/anchors, or ANCHORS=dir) in the same
# run, on the same file system, and prints all three, then a summary of the
# ratios that the read targets name (docs/PERFORMANCE.md). The read
# measurements run in ROUNDS rounds (one reader, two readers, a reader under a
# writer, in turn; LMDB's rounds each followed by a hash-table lookup run) and
# the summary uses the medians, because single runs on a shared VM drift by a
# third.
#
# SHAPE picks the keys (whycache-tool bench state --key-shape): user (workload
# W, the default; LMDB and the hash table are the anchors themselves),
# random16 or url (LMDB and the hash table are Benchmarks/KeyShapes/bench_shapes.c,
# which measures them the anchors' way on the same keys).
# REWRITE=1 rewrites the loaded file in key order (bench state --rewrite, as
# whycache-tool rewrite-state does) before WhyCache's measurements.
# Usage: Benchmarks/state-vs-lmdb.sh [N] [SECONDS] [ROUNDS] [SHAPE]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
SECONDS_PER_RUN=${2:-3}
ROUNDS=${3:-3}
SHAPE=${4:-user}
case "$SHAPE" in user | random16 | url) ;; *) echo "SHAPE is user, random16 or url" >&2; exit 2 ;; esac
ANCHORS=${ANCHORS:-../shared/anchors}
DIR=${BENCH_DIR:-/dev/shm}

if [ ! -f /usr/include/lmdb.h ]; then
    [ "$(id -u)" -eq 0 ] || { echo "please install liblmdb-dev" >&2; exit 1; }
    apt-get install -y -qq liblmdb-dev >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work" "$DIR/whycache-lmdb-$$"' EXIT
if [ "$SHAPE" = user ]; then
    gcc -O2 -Wall -o "$work/bench_lmdb" "$ANCHORS/bench_lmdb.c" -llmdb
    gcc -O2 -Wall -o "$work/bench_phys" "$ANCHORS/bench_phys.c"
    lmdb() { "$work/bench_lmdb" "$@"; }
    phys() { "$work/bench_phys" "$@" 1; } # one process
else
    gcc -O2 -Wall -o "$work/bench_shapes" Benchmarks/KeyShapes/bench_shapes.c -llmdb
    # The anchors' arguments, less their last (load: SYNC, always 0 here;
    # run: the read mode, always 0 here), which bench_shapes does not take.
    lmdb() {
        case "$1" in
        load | run) "$work/bench_shapes" "$SHAPE" "${@:1:$#-1}" ;;
        *) "$work/bench_shapes" "$SHAPE" "$@" ;;
        esac
    }
    phys() { "$work/bench_shapes" "$SHAPE" "$@"; }
fi

swift build -c release --product whycache-tool >/dev/null
REWRITE_FLAG=${REWRITE:+--rewrite}
echo "== WhyCache (whycache-tool bench state --keys $N --key-shape $SHAPE --rounds $ROUNDS $REWRITE_FLAG)"
.build/release/whycache-tool bench state --keys "$N" --key-shape "$SHAPE" --seconds "$SECONDS_PER_RUN" --rounds "$ROUNDS" --directory "$DIR" $REWRITE_FLAG \
    | tee "$work/whycache.jsonl"

echo "== LMDB (same keys and values, same folder)"
db="$DIR/whycache-lmdb-$$"
lmdb load "$db" "$N" 0 0 | tee "$work/lmdb.txt"
lmdb load "$db" "$N" 1000 0 | head -1 | tee -a "$work/lmdb.txt"
lmdb load "$db" "$N" 0 0 >/dev/null
lmdb scan "$db" | tail -3 | tee -a "$work/lmdb.txt"
for round in $(seq 1 "$ROUNDS"); do
    echo "-- round $round"
    lmdb run "$db" "$N" 1 0 "$SECONDS_PER_RUN" 0 | sed 's/^/alone /'
    lmdb run "$db" "$N" 2 0 "$SECONDS_PER_RUN" 0 | sed 's/^/pair /'
    lmdb run "$db" "$N" 1 1 "$SECONDS_PER_RUN" 0 | sed 's/^/contended /'
    # The private hash table: about two dependent loads per lookup, the physical reference.
    phys lookup "$N" $((SECONDS_PER_RUN * 2000000)) | grep '^hash ' | sed 's/^/phys /'
done | tee -a "$work/lmdb.txt"

echo "== Summary (medians over $ROUNDS rounds; LMDB and the hash table measured right after WhyCache)"
awk '
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function field(line, name,   rest) {
        rest = substr(line, index(line, "\"" name "\":") + length(name) + 3)
        sub(/[,}].*/, "", rest)
        return rest + 0
    }
    FILENAME ~ /whycache/ {
        if ($0 ~ /"metric":"get_ns"/) ours["get"] = field($0, "value")
        if ($0 ~ /"metric":"scan_ns_per_key"/) ours["scan"] = field($0, "value")
        if ($0 ~ /"metric":"file_bytes_per_key"/) ours["bytes"] = field($0, "value")
        if ($0 ~ /"metric":"get_under_writer_fraction"/) ours["writer"] = field($0, "value")
        if ($0 ~ /"metric":"load_keys_per_s"/ && $0 !~ /"transaction_keys":1000,/) ours["load"] = field($0, "value")
        if ($0 ~ /"metric":"get_2proc_total_mops"/) { s = $0; sub(/.*scaling /, "", s); sub(/x.*/, "", s); ours["pair"] = s + 0 }
        next
    }
    /^load N=.* batch=0 / { for (i = 1; i <= NF; i++) if ($(i + 1) == "inserts/s") lmdbLoad = $i }
    /B\/key/ { s = $0; sub(/.*\(/, "", s); sub(/ B\/key.*/, "", s); lmdbBytes = s }
    /^scan:/ { s = $0; sub(/.*\(/, "", s); sub(/ ns\/key.*/, "", s); scans = scans " " s }
    /^-- round/ { round++ }
    /^alone +reader/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "ns/op,") { aloneNs[round] = $i; aloneMops[round] = $(i + 2) } }
    /^pair +reader/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "ns/op,") pairMops[round] += $(i + 2) }
    /^contended +reader/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "ns/op,") contendedMops[round] = $(i + 2) }
    /^phys hash / { for (i = 1; i <= NF; i++) if ($(i + 1) == "ns/op") hashes = hashes " " $i }
    END {
        for (r = 1; r <= round; r++) {
            gets = gets " " aloneNs[r]; scalings = scalings " " pairMops[r] / aloneMops[r]
            fractions = fractions " " contendedMops[r] / aloneMops[r]
        }
        lmdbGet = median(gets); lmdbScan = median(scans); hashGet = median(hashes)
        printf "%-28s %12s %12s %10s  %s\n", "metric", "WhyCache", "LMDB", "ratio", "target"
        printf "%-28s %12.0f %12.0f %10.2f  %s\n", "get_ns", ours["get"], lmdbGet, ours["get"] / lmdbGet, "ratio <= 0.50"
        printf "%-28s %12.0f %12.0f %10.2f  %s\n", "get_ns against a hash table", ours["get"], hashGet, ours["get"] / hashGet,
            "ratio <= 1.15 at 1M keys, <= 1.25 at 10M (the middle column: the hash table)"
        printf "%-28s %12.2f %12.2f %10s  %s\n", "two readers, scaling", ours["pair"], median(scalings), "", ">= 1.90"
        printf "%-28s %12.2f %12.2f %10s  %s\n", "get_under_writer_fraction", ours["writer"], median(fractions), "", ">= 0.95"
        printf "%-28s %12.1f %12.1f %10.2f  %s\n", "scan_ns_per_key", ours["scan"], lmdbScan, ours["scan"] / lmdbScan, "ratio <= 0.80"
        printf "%-28s %12.1f %12.1f %10s  %s\n", "file_bytes_per_key", ours["bytes"], lmdbBytes, "", "<= 131 (W keys only)"
        printf "%-28s %12.0f %12.0f %10s  %s\n", "load_keys_per_s (one txn)", ours["load"], lmdbLoad, "", ">= 1,000,000"
    }
' "$work/whycache.jsonl" "$work/lmdb.txt"
