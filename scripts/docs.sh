#!/usr/bin/env bash
# Builds the DocC documentation of WhyCache and WhyCacheMySQL (Sources/*/*.docc and the doc
# comments) with `swift package generate-documentation` (swift-docc-plugin), and fails on any
# warning: a broken symbol link, an undocumented parameter. Run by scripts/test.sh after the
# build; about fifteen seconds once the package is built.
# The archives land in .build/plugins/Swift-DocC/outputs/<Module>.doccarchive; to browse one,
# `swift package --disable-sandbox preview-documentation --target WhyCache`.
set -euo pipefail
cd "$(dirname "$0")/.."
for module in WhyCache WhyCacheMySQL; do
    log=$(mktemp)
    if ! swift package generate-documentation --target "$module" --warnings-as-errors >"$log" 2>&1; then
        echo "docs.sh: $module: the documentation has problems:" >&2
        grep -E "warning|error" "$log" >&2 || cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
done
echo "documentation in .build/plugins/Swift-DocC/outputs/WhyCache.doccarchive and WhyCacheMySQL.doccarchive"
