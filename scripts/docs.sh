#!/usr/bin/env bash
# Builds the DocC documentation of the library (Sources/*/*.docc and the doc comments of
# WhyCache, the two targets it re-exports — WhyCacheState and WhyCacheSupport — and WhyCacheMySQL)
# with `swift package generate-documentation` (swift-docc-plugin) as one combined archive, so
# that a page of one module links to the types of another, and fails on any warning: a broken
# symbol link, an undocumented parameter. Run by scripts/test.sh after the build; under a minute
# once the package is built.
# The archive lands in .build/plugins/Swift-DocC/outputs/WhyCache.doccarchive; to browse a
# module, `swift package --disable-sandbox preview-documentation --target WhyCache`.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! swift package generate-documentation --enable-experimental-combined-documentation --warnings-as-errors \
    --target WhyCache --target WhyCacheState --target WhyCacheSupport --target WhyCacheMySQL >"$log" 2>&1; then
    echo "docs.sh: the documentation has problems:" >&2
    grep -E "warning|error" "$log" >&2 || cat "$log" >&2
    exit 1
fi
echo "documentation in $(ls -d .build/plugins/Swift-DocC/outputs/*.doccarchive | tr '\n' ' ')"
