#!/usr/bin/env bash
# Runs the whole WhyCache test suite from a fresh clone on Debian.
# Installs what the tests need (as root, through apt) when it is missing, and runs a private
# MariaDB server for the tests (see scripts/mariadb-server.sh), stopped again on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin # mariadbd is in /usr/sbin, not on an ordinary user's PATH

bash scripts/install-dependencies.sh --server

# A private MariaDB server on a free port, in a fresh folder, started before the build so that it is
# up when the tests start. The EXIT trap stops it and deletes the folder however this script ends
# (tests failed, build failed, Ctrl-C); it does not change the script's exit status.
mariadb_script="$PWD/scripts/mariadb-server.sh"
mariadb_dir=$(mktemp -d)
trap '"$mariadb_script" stop "$mariadb_dir" || true; rm -rf "$mariadb_dir" || true' EXIT
mariadb_port=$("$mariadb_script" free-port)
"$mariadb_script" start "$mariadb_dir" "$mariadb_port"
export WHYCACHE_TEST_MYSQL_HOST=127.0.0.1
export WHYCACHE_TEST_MYSQL_PORT="$mariadb_port"
export WHYCACHE_TEST_MYSQL_USER=whycache
export WHYCACHE_TEST_MYSQL_PASSWORD=whycache-test-password
export WHYCACHE_TEST_MYSQL_DATABASE=whycache_test
# Some tests start, kill and restart extra servers of their own with it.
export WHYCACHE_TEST_MARIADB_SCRIPT="$mariadb_script"

# Tests spawn the test helper and the tool as separate processes, so build everything first.
# (Not `exec`: the EXIT trap must still run; set -e makes a failure the script's exit status.)
swift build --build-tests
swift test --skip-build "$@"
