#!/usr/bin/env bash
# Runs the whole WhyCache test suite from a fresh clone on Debian.
# Installs what the tests need (as root, through apt) when it is missing, and runs a private
# MariaDB server for the tests with two replicas of it (see scripts/mariadb-server.sh), stopped again
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin # mariadbd is in /usr/sbin, not on an ordinary user's PATH

bash scripts/install-dependencies.sh --server

# A private MariaDB server on a free port, in a fresh folder, started before the build so that it is
# up when the tests start, and two replicas of it, each on its own free port in its own fresh folder.
# The EXIT trap stops them (the replicas first, then the primary) and deletes the folders however this
# script ends (tests failed, build failed, Ctrl-C); it does not change the script's exit status.
# Tests that start servers of their own (a server killed mid-append, one that is down at start) make
# them in folders under $WHYCACHE_TEST_SERVER_ROOT and stop them themselves; the trap also kills any
# that a crashed or killed test run left behind there.
mariadb_script="$PWD/scripts/mariadb-server.sh"
mariadb_dir=
replica_dirs=()
replica_ports=()
server_root=$(mktemp -d)
export WHYCACHE_TEST_SERVER_ROOT="$server_root"
stop_servers() {
    local status=$? dir
    # A failed run shows what the shared servers logged last, to tell a test's failure from a
    # server that stalled or crashed under it (a lost connection, MySQL error 2013).
    if [ "$status" -ne 0 ]; then
        for dir in "$mariadb_dir" ${replica_dirs[@]+"${replica_dirs[@]}"}; do
            [ -s "$dir/error.log" ] || continue
            echo "--- test.sh: the last lines of $dir/error.log (the run failed with status $status):" >&2
            tail -n 40 "$dir/error.log" >&2
        done
    fi
    for dir in ${replica_dirs[@]+"${replica_dirs[@]}"} "$mariadb_dir"; do
        [ -n "$dir" ] || continue
        "$mariadb_script" stop "$dir" || true
        rm -rf "$dir" || true
    done
    for dir in "$server_root"/*/server; do
        [ -d "$dir" ] && { "$mariadb_script" kill "$dir" || true; }
    done
    rm -rf "$server_root" || true
}
trap stop_servers EXIT
mariadb_dir=$(mktemp -d)
mariadb_port=$("$mariadb_script" free-port)
"$mariadb_script" start "$mariadb_dir" "$mariadb_port"

# The replicas start one after the other (each waits until it has copied the primary's test
# database and user: about a second each); their ports must differ from each other and from the
# primary's.
used_ports=" $mariadb_port "
for _ in 1 2; do
    replica_dirs+=("$(mktemp -d)")
    port=$("$mariadb_script" free-port)
    while [[ $used_ports == *" $port "* ]]; do port=$("$mariadb_script" free-port); done
    used_ports+="$port "
    replica_ports+=("$port")
    "$mariadb_script" start-replica "${replica_dirs[-1]}" "$port" "$mariadb_port" ||
        { echo "test.sh: a replica did not start" >&2; exit 1; }
done

export WHYCACHE_TEST_MYSQL_HOST=127.0.0.1
export WHYCACHE_TEST_MYSQL_PORT="$mariadb_port"
export WHYCACHE_TEST_MYSQL_USER=whycache
export WHYCACHE_TEST_MYSQL_PASSWORD=whycache-test-password
export WHYCACHE_TEST_MYSQL_DATABASE=whycache_test
# The replicas of that server (read-only; the same user, password and database), in the same order
# in both lists: tests stop, kill, restart (start-replica DIR PORT PRIMARY_PORT) them and make them
# lag (sql DIR "STOP SLAVE SQL_THREAD") with the script below.
export WHYCACHE_TEST_MYSQL_REPLICA_PORTS="${replica_ports[0]},${replica_ports[1]}"
export WHYCACHE_TEST_MYSQL_REPLICA_DIRS="${replica_dirs[0]},${replica_dirs[1]}"
# Some tests start, kill and restart extra servers of their own with it.
export WHYCACHE_TEST_MARIADB_SCRIPT="$mariadb_script"

# Tests spawn the test helper and the tool as separate processes, so build everything first.
# (Not `exec`: the EXIT trap must still run; set -e makes a failure the script's exit status.)
# WHYCACHE_TEST_SWIFTPM_FLAGS: extra flags for both (scripts/sanitize.sh: a sanitizer and its own
# build folder).
read -r -a swiftpm_flags <<<"${WHYCACHE_TEST_SWIFTPM_FLAGS:-}"
swift build ${swiftpm_flags[@]+"${swiftpm_flags[@]}"} --build-tests
swift test ${swiftpm_flags[@]+"${swiftpm_flags[@]}"} --skip-build "$@"

# What follows is not a test filter, so it runs only for the whole suite (no arguments; the
# sanitizer runs always pass a filter):
# - the DocC documentation builds without a warning (about ten seconds);
# - the fuzz targets still compile against the code they fuzz (docs/RELIABILITY.md, "Fuzzing"; a few
#   seconds; their fixed-seed run, `bash scripts/fuzz.sh ci`, is a separate check: its sanitized
#   release build alone takes about four minutes);
# - the short run of the fault-injection harness (docs/RELIABILITY.md), with its own MariaDB server.
if [ $# -eq 0 ]; then
    bash scripts/docs.sh >/dev/null
    bash scripts/fuzz.sh typecheck
    WHYCACHE_SOAK_SKIP_BUILD=1 bash scripts/soak.sh --ci
fi
