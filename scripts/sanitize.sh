#!/usr/bin/env bash
# Runs the test suite under a sanitizer, with the test command's private MariaDB servers.
#
#   bash scripts/sanitize.sh thread [FILTER]    ThreadSanitizer: the concurrency and multi-process suites
#   bash scripts/sanitize.sh address [FILTER]   AddressSanitizer: the whole suite (optimized build)
#
# FILTER (a `swift test --filter` regular expression) replaces the default selection. Everything is
# built with the sanitizer into its own build folder (.build-tsan, .build-asan), so the tool and the
# test helper that the multi-process tests spawn run under it too; a report from any of them fails
# the test that spawned it (a sanitized process exits non-zero after its report). Each sanitizer
# halts at its first report. Figures and the last runs: docs/RELIABILITY.md, "Sanitizers".
set -euo pipefail
cd "$(dirname "$0")/.."

# The suites where threads, tasks or processes meet: the write coalescer and its MySQL form, the
# appender's gather, the background updater, the poller election, the change streams, snapshots
# closed from several tasks, and every suite of separate processes (killed or not).
thread_suites='WriteCoalescingTests|MySQLAppendRequestTests|BackgroundUpdaterTests|PollerElection|ChangeStreamTests|StateSnapshotClosingTests|SharedCacheTests|ProcessTests|CrashTests'

case "${1:-}" in
thread)
    sanitizer=thread build_path=.build-tsan filter=${2:-$thread_suites} configuration=
    # Halt at the first report, and let a report fail the process even when it would exit 0.
    export TSAN_OPTIONS="halt_on_error=1:exitcode=66${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    ;;
address)
    # In an optimized build (with -enable-testing, for the tests' @testable imports): at -Onone the
    # suite's large-value cases alone ran for minutes under the sanitizer. The checks are the same:
    # every memory access the optimized code makes is instrumented.
    sanitizer=address build_path=.build-asan filter=${2:-.} configuration="-c release -Xswiftc -enable-testing"
    # Leaks are not checked: the Swift runtime keeps metadata caches for the process's life.
    export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    ;;
*)
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
# The Swift runtime's backtracer would run inside the sanitizer's report.
export SWIFT_BACKTRACE=enable=no
# Package.swift compiles the package's own targets with the sanitizer when WHYCACHE_SANITIZE is set
# (`swift build --sanitize=` cannot build swift-testing tests; see there).
WHYCACHE_SANITIZE=$sanitizer WHYCACHE_TEST_SWIFTPM_FLAGS="--build-path $build_path${configuration:+ $configuration}" \
    exec bash scripts/test.sh --filter "$filter"
