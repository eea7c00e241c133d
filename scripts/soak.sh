#!/usr/bin/env bash
# WhyCache's fault-injection harness (scripts/soak.py): kills processes anywhere, damages files
# anywhere, fills the disk, restarts MariaDB under a writer, and checks reads under a writer, through
# the built tool and test helper. Prints JSON lines with the figures and ends with "N passed, N failed";
# exits 1 when a check failed. docs/RELIABILITY.md records the figures of the last runs.
#
#   bash scripts/soak.sh            the long run (1,000 kill cycles per datastore, 10,000 mutants,
#                                   10M torn-read checks, 5 full-disk rounds, 20 server restarts)
#   bash scripts/soak.sh --ci       the short run of the test command (50 cycles, 1,000 mutants,
#                                   1M reads, 2 full-disk rounds, 20 server restarts)
#   bash scripts/soak.sh [--ci] --seed N --phases torn-reads,kill-file,...   (see soak.py --help)
#
# Builds the debug products first unless WHYCACHE_SOAK_SKIP_BUILD=1 (the test command has just built
# them). Starts its own private MariaDB server (scripts/mariadb-server.sh) for the MySQL phases, on a
# free port in a fresh folder, and stops it on exit. The full-disk phase mounts a small tmpfs and so
# runs only as root; otherwise it reports itself skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin

sizes=(--kill-cycles 1000 --mutants 10000 --torn-reads 10000000 --full-disk-rounds 5 --mysql-restarts 20)
if [ "${1:-}" = "--ci" ]; then
    shift
    sizes=(--kill-cycles 50 --mutants 1000 --torn-reads 1000000 --full-disk-rounds 2 --mysql-restarts 20)
fi

command -v python3 >/dev/null || { echo "soak.sh: python3 is needed (apt-get install -y python3)" >&2; exit 2; }
if [ "${WHYCACHE_SOAK_SKIP_BUILD:-0}" != 1 ]; then
    swift build --build-tests
fi
bin=$(swift build --show-bin-path)

mariadb_script="$PWD/scripts/mariadb-server.sh"
mariadb_dir=$(mktemp -d)
trap '"$mariadb_script" stop "$mariadb_dir" || true; rm -rf "$mariadb_dir"' EXIT
mariadb_port=$("$mariadb_script" free-port)
"$mariadb_script" start "$mariadb_dir" "$mariadb_port"
export WHYCACHE_TEST_MYSQL_HOST=127.0.0.1
export WHYCACHE_TEST_MYSQL_PORT="$mariadb_port"
export WHYCACHE_TEST_MYSQL_USER=whycache
export WHYCACHE_TEST_MYSQL_PASSWORD=whycache-test-password
export WHYCACHE_TEST_MYSQL_DATABASE=whycache_test

python3 scripts/soak.py --tool "$bin/whycache-tool" --helper "$bin/whycache-test-helper" \
    --mariadb-script "$mariadb_script" --mariadb-directory "$mariadb_dir" "${sizes[@]}" "$@"
