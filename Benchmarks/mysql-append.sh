#!/usr/bin/env bash
# The MySQL write-path measurements of docs/PERFORMANCE.md ("One round trip per append"), side by
# side with an earlier commit in one sitting: a private MariaDB server (scripts/mariadb-server.sh),
# the release tool of this checkout and of BASE (built in a worktree under .build-base/), then
# ROUNDS rounds, each running both tools one after the other on fresh logs:
#   - bench mysql: 2,000 sequential single-key sets (set_latency_us p50/p99) and 8 concurrent
#     writers × 1,000 sets, coalescing off (set_keys_per_s);
#   - bench mysql with 128 writers × 250 sets;
#   - bench coalesce: 64 tasks × 500 sets, coalescing off and on;
# and, with this checkout's tool only, 8 and 128 writers with two transactions in flight
# (--concurrent-appends 2) and with the appender's gather wait off (--append-gather-wait-us 0).
# Every line it prints is a JSON measurement, or a "==" heading naming the tool and command.
# With SERVER_CPUS and CLIENT_CPUS set (taskset lists, e.g. SERVER_CPUS=1 CLIENT_CPUS=0), the
# server's threads and the tools run on those CPUs only, so that the client's cost can be told
# apart from the server's on a machine that runs both.
# Usage: Benchmarks/mysql-append.sh [BASE_COMMIT] [ROUNDS]   (default: 5484e9d 2)
# BASE_COMMIT 5484e9d is the last commit before appends became one round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin
BASE=${1:-5484e9d}
ROUNDS=${2:-2}

bash scripts/install-dependencies.sh --server >/dev/null
swift build -c release --product whycache-tool >/dev/null
new_tool=$PWD/.build/release/whycache-tool
base_dir=$PWD/.build-base/$BASE
if [ ! -x "$base_dir/.build/release/whycache-tool" ]; then
    rm -rf "$base_dir"
    git worktree prune
    git worktree add --detach "$base_dir" "$BASE" >/dev/null
    (cd "$base_dir" && swift build -c release --product whycache-tool >/dev/null)
fi
base_tool=$base_dir/.build/release/whycache-tool

script=$PWD/scripts/mariadb-server.sh
server_dir=$(mktemp -d)
trap '"$script" stop "$server_dir" >/dev/null 2>&1 || true; rm -rf "$server_dir"' EXIT
port=$("$script" free-port)
"$script" start "$server_dir" "$port" >/dev/null
export WHYCACHE_MYSQL_PASSWORD=whycache-test-password
store="mysql://whycache@127.0.0.1:$port/whycache_test"
pin=()
if [ -n "${SERVER_CPUS:-}" ]; then taskset -a -c -p "$SERVER_CPUS" "$(cat "$server_dir/mysqld.pid")" >/dev/null; fi
if [ -n "${CLIENT_CPUS:-}" ]; then pin=(taskset -c "$CLIENT_CPUS"); fi

run() { # NAME TOOL ARGS...
    local name=$1 tool=$2
    shift 2
    echo "== $name: bench $*"
    "${pin[@]}" "$tool" bench "$@" --store "$store" 2>/dev/null
}
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round"
    for pair in "base:$base_tool" "new:$new_tool"; do
        name=${pair%%:*} tool=${pair#*:}
        run "$name" "$tool" mysql --records 10 --batched-records 1 --batches 1 --sets 2000 --writers 8 --writer-sets 1000
        run "$name" "$tool" mysql --records 10 --batched-records 1 --batches 1 --sets 10 --writers 128 --writer-sets 250
        run "$name" "$tool" coalesce --tasks 64 --task-sets 500 --lone-sets 10
    done
    for option in "--concurrent-appends 2" "--append-gather-wait-us 0"; do
        # shellcheck disable=SC2086 # the option is two words
        run new "$new_tool" mysql --records 10 --batched-records 1 --batches 1 --sets 10 --writers 8 --writer-sets 1000 $option
        # shellcheck disable=SC2086
        run new "$new_tool" mysql --records 10 --batched-records 1 --batches 1 --sets 10 --writers 128 --writer-sets 250 $option
    done
done
