#!/usr/bin/env bash
# Runs the whole WhyCache test suite from a fresh clone on Debian.
# Installs what the tests need (as root, through apt) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v swift >/dev/null || { echo "swift is required (Swift 6.0 or later)" >&2; exit 1; }
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then echo "please install: ${need[*]}" >&2; exit 1; fi
    apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi

# Tests spawn the test helper and the tool as separate processes, so build everything first.
swift build --build-tests
swift test --skip-build "$@"
