#!/usr/bin/env bash
# Runs the WhyCache demo (`whycache-tool demo`: a file-datastore log shared by reader, follower
# and writer processes) from a fresh clone on Debian, installing the build's Debian packages
# first when they are missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-dependencies.sh
swift run -c release whycache-tool demo "$@"
