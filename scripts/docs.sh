#!/usr/bin/env bash
# Builds the DocC documentation of WhyCache and WhyCacheMySQL (Sources/*/*.docc and the doc
# comments) with the toolchain's docc, and fails on any warning (a broken symbol link, an
# undocumented parameter). Run by scripts/test.sh after the build; about ten seconds.
# Usage: scripts/docs.sh [OUTPUT_DIR]   (default: .build/documentation: one .doccarchive-style
#        folder per module, to serve with a web server or open with Xcode)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/documentation}
graphs=.build/symbolgraph-docs
rm -rf "$graphs"
# "Files written to DIR" is its last line.
source_graphs=$(swift package dump-symbol-graph --minimum-access-level public | sed -n 's/^Files written to //p')
[ -d "$source_graphs" ] || { echo "docs.sh: no symbol graphs were written" >&2; exit 1; }
mkdir -p "$out"
status=0
for module in WhyCache WhyCacheMySQL; do
    mkdir -p "$graphs/$module"
    cp "$source_graphs/$module.symbols.json" "$graphs/$module/"
    log=$(mktemp)
    if ! docc convert "Sources/$module/$module.docc" --additional-symbol-graph-dir "$graphs/$module" \
        --fallback-display-name "$module" --fallback-bundle-identifier "org.whycache.$module" \
        --output-path "$out/$module" --warnings-as-errors >"$log" 2>&1; then
        echo "docs.sh: $module: docc reported problems:" >&2
        grep -E "warning|error" "$log" >&2 || cat "$log" >&2
        status=1
    fi
    rm -f "$log"
done
[ $status -eq 0 ] && echo "documentation in $out/WhyCache and $out/WhyCacheMySQL"
exit $status
