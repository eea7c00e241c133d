#!/usr/bin/env bash
# Builds and tests the example packages under Examples/ that have a Package.swift (each depends
# on this checkout by path). A check of its own, outside scripts/test.sh: the FlagService example
# builds Hummingbird and SwiftNIO, which takes several minutes on two cores. The script-only
# examples (Examples/CronSnapshot) are run by the test suite itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-dependencies.sh
status=0
for package in Examples/*/Package.swift; do
    folder=$(dirname "$package")
    echo "== $folder: swift build --build-tests && swift test --skip-build"
    (cd "$folder" && swift build --build-tests && swift test --skip-build) || status=1
done
exit $status
