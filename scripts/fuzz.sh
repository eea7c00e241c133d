#!/usr/bin/env bash
# libFuzzer targets for every decoder of bytes that come from outside the process (Fuzz/Targets).
#
#   bash scripts/fuzz.sh build                       builds every target into .build-fuzz/fuzzers/
#   bash scripts/fuzz.sh run TARGET SECONDS [ARG…]   fuzzes TARGET for SECONDS (ARGs go to libFuzzer)
#   bash scripts/fuzz.sh typecheck                   type-checks every target against the debug build (the test command)
#   bash scripts/fuzz.sh ci [RUNS]                   builds, then runs every target RUNS (default 1000) executions, seed 1
#   bash scripts/fuzz.sh seeds [TARGET…]             rewrites the committed seed corpus Fuzz/Corpus/TARGET
#   bash scripts/fuzz.sh reproduce TARGET FILE…      runs TARGET once on each FILE (a finding)
#   bash scripts/fuzz.sh totals                      executions and time per target over every run logged here
#
# The code under test is built by SwiftPM as modules only (an executable linked with -sanitize=fuzzer
# would clash with libFuzzer's main), with coverage instrumentation and AddressSanitizer, in release
# mode with -enable-testing so that a target reaches internal types; each target file is then linked
# with swiftc against those objects. A run starts from the committed seeds plus the corpus that
# earlier runs on this machine grew (.build-fuzz/corpus/TARGET, not committed); a crash, a Swift
# trap, a leak or an input that takes more than 10 s stops it with the input saved in
# .build-fuzz/findings/TARGET/ and a non-zero exit status. Each run appends its figures
# (libFuzzer's final stats) to .build-fuzz/runs.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

build_path=.build-fuzz
release=$build_path/release
targets=(log-record segment checkpoint snapshot state-header store-url hex-text log-replay checkpoint-replay snapshot-restore state-file)

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

known_target() {
    local target
    for target in "${targets[@]}"; do [ "$target" = "$1" ] && return 0; done
    echo "fuzz.sh: unknown target $1 (known: ${targets[*]})" >&2
    exit 2
}

# The `-package-name` SwiftPM compiled the modules of the build at $1 with (the package's folder name,
# made an identifier): a target compiled with the same name sees their `package` declarations.
package_name() {
    local name
    name=$(grep -o -- '"-package-name","[^"]*"' "$1.yaml" | grep -v '"swift_' | head -1 | cut -d'"' -f4)
    [ -n "$name" ] || { echo "fuzz.sh: no -package-name in $1.yaml (build first)" >&2; exit 1; }
    echo "$name"
}

build() {
    local flags=(--build-path "$build_path" -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing)
    # The tool's module depends on everything the targets use; _AtomicsShims' C file is only
    # compiled for a link, so it is asked for by name.
    swift build "${flags[@]}" --target whycache-tool
    swift build "${flags[@]}" --target _AtomicsShims
    local objects=() maps=() map
    mapfile -d "" objects < <(find "$release/" -path "$release/*.build/*.o" \
        ! -path "*/WhyCacheTests.build/*" ! -path "*/WhyCachePackage*" ! -path "*/whycache_test_helper.build/*" \
        ! -path "*/WhyCacheTestSupport.build/*" -print0)
    # The C modules the Swift modules import, for the target files' own compilation.
    while IFS= read -r -d '' map; do maps+=(-Xcc "-fmodule-map-file=$map"); done < <(
        find Sources "$release/" -mindepth 2 -maxdepth 2 -name module.modulemap -print0
        find "$build_path/checkouts" -path '*/Sources/*/include/module.modulemap' ! -path '*/Benchmarks/*' -print0)
    mkdir -p "$build_path/fuzzers"
    local target
    for target in "${targets[@]}"; do
        swiftc -O -swift-version 6 -sanitize=fuzzer,address -parse-as-library -module-name "Fuzz_${target//-/_}" \
            -package-name "$(package_name "$release")" \
            -I "$release/Modules" -I /usr/include/mariadb "${maps[@]}" \
            "Fuzz/Targets/$target.swift" Fuzz/Support/*.swift "${objects[@]}" -lz -lmariadb \
            -o "$build_path/fuzzers/$target" 2> >(grep -v "Cannot export local symbol '__asan" >&2)
        echo "built $build_path/fuzzers/$target"
    done
}

# Type-checks every target against the debug build's modules (`swift build --build-tests` first):
# what the test command runs, so that a target cannot stop compiling unnoticed, in seconds.
typecheck() {
    local debug=.build/debug maps=() map target
    while IFS= read -r -d '' map; do maps+=(-Xcc "-fmodule-map-file=$map"); done < <(
        find Sources "$debug/" -mindepth 2 -maxdepth 2 -name module.modulemap -print0
        find .build/checkouts -path '*/Sources/*/include/module.modulemap' ! -path '*/Benchmarks/*' -print0)
    for target in "${targets[@]}"; do
        swiftc -typecheck -swift-version 6 -parse-as-library -module-name "Fuzz_${target//-/_}" \
            -package-name "$(package_name "$debug")" \
            -I "$debug/Modules" -I /usr/include/mariadb "${maps[@]}" "Fuzz/Targets/$target.swift" Fuzz/Support/*.swift
    done
    echo "fuzz.sh: every target type-checks (${targets[*]})"
}

run() {
    local target=$1 seconds=$2
    shift 2
    known_target "$target"
    local corpus=${corpus_root:-$build_path/corpus}/$target findings=$build_path/findings/$target log=$build_path/logs/$target.$(date +%s).log
    mkdir -p "$corpus" "$findings" "$build_path/logs"
    local status=0 started=$SECONDS
    # The Swift runtime's backtracer would run inside AddressSanitizer; libFuzzer reports the trap.
    export SWIFT_BACKTRACE=enable=no
    # -timeout: one input running 10 s is a hang. -rss_limit_mb: a decoder that buffers what damaged
    # lengths promise would exceed it. Leaks are reported at the end of each input that leaked.
    "$build_path/fuzzers/$target" "$corpus" "Fuzz/Corpus/$target" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" "$@" > "$log" 2>&1 || status=$?
    local executions rate added elapsed=$((SECONDS - started))
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$target" "$elapsed" "${executions:-0}" "${rate:-0}" \
        "$(find "$corpus" -type f | wc -l)" "$status" >> "$build_path/runs.tsv"
    echo "$target: ${executions:-?} executions in ${elapsed}s (${rate:-?}/s), corpus $(find "$corpus" -type f | wc -l) inputs (+${added:-?}), exit $status, log $log"
    if [ "$status" != 0 ]; then
        grep -E "ERROR|Fatal error|SUMMARY|artifact|Test unit written" "$log" | head -20 >&2
        return "$status"
    fi
}

seeds() {
    local target
    for target in "$@"; do
        known_target "$target"
        rm -rf "Fuzz/Corpus/$target"
        SWIFT_BACKTRACE=enable=no WHYCACHE_FUZZ_WRITE_SEEDS="$PWD/Fuzz/Corpus/$target" "$build_path/fuzzers/$target"
        echo "$target: $(ls "Fuzz/Corpus/$target" | wc -l) seeds, $(cat "Fuzz/Corpus/$target"/* | wc -c) bytes"
    done
}

case "${1:-}" in
build) build ;;
typecheck) typecheck ;;
run) [ $# -ge 3 ] || usage; run "${@:2}" ;;
ci)
    # The test command's check: every target builds, and runs a fixed number of executions with a
    # fixed seed from the committed seeds (the same inputs on every machine: a red run is a
    # finding anyone reproduces, never a lucky one).
    build
    corpus_root=$(mktemp -d)
    trap 'rm -rf "$corpus_root"' EXIT
    failed=0
    for target in "${targets[@]}"; do run "$target" 120 -seed=1 -runs="${2:-1000}" || failed=1; done
    exit "$failed"
    ;;
seeds) shift; if [ $# -eq 0 ]; then seeds "${targets[@]}"; else seeds "$@"; fi ;;
reproduce) [ $# -ge 3 ] || usage; known_target "$2"; SWIFT_BACKTRACE=enable=no "$build_path/fuzzers/$2" "${@:3}" ;;
totals)
    awk -F'\t' '{ runs[$2] += $4; secs[$2] += $3; corpus[$2] = $6 } END {
        for (t in runs) printf "%-12s %12d executions %7d s  corpus %d\n", t, runs[t], secs[t], corpus[t] }' \
        "$build_path/runs.tsv" | sort
    ;;
*) usage ;;
esac
