#!/usr/bin/env bash
# Runs a private, throw-away MariaDB server for the WhyCache test suite, without systemd.
#
# Everything the server needs lives in one folder DIR:
#   DIR/data          the data directory (created by mariadb-install-db on the first start)
#   DIR/mysqld.sock   the server's Unix socket (root logs in through it, by socket authentication)
#   DIR/mysqld.pid    the server's pid file
#   DIR/error.log     the server's error log
#   DIR/install.log   the output of mariadb-install-db
#   DIR/mariadbd.out  whatever the server writes to stdout/stderr outside its error log
#
# Usage:
#   mariadb-server.sh start DIR PORT   create DIR/data if needed, start the server, wait until it answers
#   mariadb-server.sh stop DIR         SIGTERM the server and wait until the process is gone
#   mariadb-server.sh kill DIR         SIGKILL the server (a simulated crash) and wait until it is gone
#   mariadb-server.sh free-port        print a TCP port that is free on 127.0.0.1
#
# On the first start (only when DIR/data was just created) it creates the database whycache_test and
# the user whycache@127.0.0.1 / whycache@localhost (password whycache-test-password) with all
# privileges on it and on every database named whycache_*. A later start of a stopped or killed server reuses DIR/data and keeps its data.
#
# Every mariadb program gets --no-defaults as its FIRST option: it must come first, or the
# program reads /etc/mysql/my.cnf (and ~/.my.cnf) and the machine's configuration leaks in.
set -euo pipefail

# mariadbd is in /usr/sbin, which is not on an ordinary user's PATH on Debian.
PATH=$PATH:/usr/sbin:/sbin

readonly TEST_DATABASE=whycache_test
readonly TEST_USER=whycache
readonly TEST_PASSWORD=whycache-test-password
readonly START_TIMEOUT=30 # seconds to wait for the server to answer
readonly STOP_TIMEOUT=60  # seconds to wait for the server to exit after SIGTERM

usage() {
    echo "usage: $0 start DIR PORT | stop DIR | kill DIR | free-port" >&2
    exit 2
}

die() {
    echo "mariadb-server.sh: $*" >&2
    exit 1
}

# The system user the server runs as: mariadbd refuses to run as root unless told --user=root.
# mariadb-install-db also gives this user a socket-authenticated admin account (<u>@localhost).
server_user() {
    if [ "$(id -u)" -eq 0 ]; then echo root; else id -un; fi
}

# Prints the tail of DIR/error.log (and of DIR/mariadbd.out, where the server writes what it says
# before it opens its error log) to stderr.
show_logs() {
    local dir=$1
    if [ -s "$dir/error.log" ]; then
        echo "--- last lines of $dir/error.log:" >&2
        tail -n 30 "$dir/error.log" >&2
    fi
    if [ -s "$dir/mariadbd.out" ]; then
        echo "--- last lines of $dir/mariadbd.out:" >&2
        tail -n 5 "$dir/mariadbd.out" >&2
    fi
}

# True when the process $1 exists and is not a zombie. `kill -0` alone is not enough: the server is
# reparented to PID 1 when the start command exits, and a PID 1 that does not reap its children (as
# in some containers) leaves a dead server around as a zombie, which `kill -0` still reports as alive.
alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/stat" ]; then
        # The state is the first field after the ")" that closes the command name.
        state=$(sed -n 's/^.*) \([A-Za-z]\).*$/\1/p' "/proc/$pid/stat" 2>/dev/null) || true
        [ "$state" != Z ] && [ "$state" != X ] || return 1
    fi
    return 0
}

# Prints the pid from DIR/mysqld.pid when that process is alive and really is a mariadbd (a stale pid
# file after a crash may name a pid that has since been reused by an unrelated process); prints
# nothing otherwise.
server_pid() {
    local dir=$1 pid comm
    [ -s "$dir/mysqld.pid" ] || return 0
    pid=$(tr -dc 0-9 <"$dir/mysqld.pid")
    [ -n "$pid" ] && alive "$pid" || return 0
    if [ -r "/proc/$pid/comm" ]; then
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
        case $comm in mariadbd | mysqld) ;; *) return 0 ;; esac
    fi
    echo "$pid"
}

# Waits up to $2 seconds for process $1 to be gone; fails if it is still there.
wait_gone() {
    local pid=$1 timeout=$2 i
    for ((i = 0; i < timeout * 10; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    ! alive "$pid"
}

# Runs SQL as the socket-authenticated admin account, through the Unix socket.
admin_sql() {
    local dir=$1 sql=$2
    mariadb --no-defaults --socket="$dir/mysqld.sock" --user="$(server_user)" --batch -e "$sql"
}

# Closes every descriptor above stderr that this script inherited. The server would inherit them
# too and keep them open for its whole life: a pipe among them would never report end-of-file to
# the process reading it (a test that runs this script and reads its output, or another child's
# pipe that the caller had open at the time).
close_inherited_descriptors() {
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

cmd_start() {
    [ $# -eq 2 ] || usage
    local dir=$1 port=$2 user fresh=0 pid i
    close_inherited_descriptors
    [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd) # mariadbd wants absolute paths
    user=$(server_user)

    if [ -n "$(server_pid "$dir")" ]; then
        die "a server is already running in $dir (pid $(server_pid "$dir"))"
    fi

    # A data directory that mariadb-install-db completed has the system database "mysql" in it.
    if [ ! -d "$dir/data/mysql" ]; then
        rm -rf "$dir/data" # leftovers of an interrupted install
        # --skip-test-db: no anonymous "test" database; socket authentication: root has no password
        # and only the system user $user can log in as root, through the socket.
        if ! mariadb-install-db --no-defaults --user="$user" --datadir="$dir/data" \
            --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1; then
            echo "mariadb-server.sh: mariadb-install-db failed; last lines of $dir/install.log:" >&2
            tail -n 30 "$dir/install.log" >&2
            rm -rf "$dir/data"
            exit 1
        fi
        fresh=1
    fi

    # Start the server detached: setsid puts it in its own session (so it survives the caller's
    # shell and does not get the terminal's signals), nohup ignores SIGHUP, stdin comes from
    # /dev/null, and stdout/stderr go to a file, so that a caller reading this script's output
    # through a pipe does not wait for the server to close it.
    setsid nohup mariadbd --no-defaults --user="$user" --datadir="$dir/data" \
        --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --port="$port" \
        --bind-address=127.0.0.1 --skip-name-resolve --log-error="$dir/error.log" \
        --innodb-buffer-pool-size=256M --max-connections=500 \
        </dev/null >>"$dir/mariadbd.out" 2>&1 &
    pid=$! # setsid execs (no fork) because a background job of a script is not a group leader

    # Wait until the server answers on its socket. `ping` succeeds as soon as the server accepts
    # connections (even if the login were refused), and fails while the socket is not there yet.
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" --connect-timeout=2 \
            ping >/dev/null 2>&1; then
            break
        fi
        if ! alive "$pid"; then
            echo "mariadb-server.sh: the server in $dir exited during startup" >&2
            show_logs "$dir"
            [ $fresh -eq 0 ] || rm -rf "$dir/data" # so that the next start provisions it again
            exit 1
        fi
        sleep 0.1
    done
    if ((i >= START_TIMEOUT * 10)); then
        echo "mariadb-server.sh: the server in $dir did not answer within ${START_TIMEOUT}s" >&2
        show_logs "$dir"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || true
        [ $fresh -eq 0 ] || rm -rf "$dir/data"
        exit 1
    fi

    # First start: create the test database and the test user (over TCP it comes from 127.0.0.1,
    # over the socket from localhost; --skip-name-resolve means hosts are matched by IP). The user
    # also gets rights on every database named whycache_*, existing or not, so that a test that names
    # a missing one gets "unknown database" rather than "access denied". (No SQL comments in the
    # statements: the client drops everything after a "--" comment in -e text.)
    if [ $fresh -eq 1 ]; then
        if ! admin_sql "$dir" "
            CREATE DATABASE IF NOT EXISTS \`$TEST_DATABASE\`;
            CREATE USER IF NOT EXISTS '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASSWORD';
            CREATE USER IF NOT EXISTS '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASSWORD';
            GRANT ALL PRIVILEGES ON \`$TEST_DATABASE\`.* TO '$TEST_USER'@'127.0.0.1';
            GRANT ALL PRIVILEGES ON \`$TEST_DATABASE\`.* TO '$TEST_USER'@'localhost';
            GRANT ALL PRIVILEGES ON \`whycache\\_%\`.* TO '$TEST_USER'@'127.0.0.1';
            GRANT ALL PRIVILEGES ON \`whycache\\_%\`.* TO '$TEST_USER'@'localhost';
        "; then
            echo "mariadb-server.sh: could not create the test database and user in $dir" >&2
            show_logs "$dir"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || true
            rm -rf "$dir/data"
            exit 1
        fi
    fi
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    local dir=$1 pid
    pid=$(server_pid "$dir")
    [ -n "$pid" ] || return 0 # not running: nothing to do
    # Not `mariadb-admin shutdown`: it returns before the server has exited.
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
        echo "mariadb-server.sh: the server in $dir (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "the server in $dir (pid $pid) survived SIGKILL"
    fi
    rm -f "$dir/mysqld.pid" # normally the server removes it itself
}

cmd_kill() {
    [ $# -eq 1 ] || usage
    local dir=$1 pid
    pid=$(server_pid "$dir")
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "the server in $dir (pid $pid) survived SIGKILL"
    # A killed server leaves its pid file behind; remove it so that the pid, once reused by another
    # process, is not mistaken for the server. (The stale socket and its .lock file are harmless:
    # the next start sees that their owner is gone and replaces them.)
    rm -f "$dir/mysqld.pid"
}

cmd_free_port() {
    [ $# -eq 0 ] || usage
    # Bind port 0 and print the port the kernel picked; it stays free unless someone else takes it
    # before the server binds it. python3 when available, else perl (perl-base is always on Debian).
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
    else
        perl -MIO::Socket::INET -e '
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)
    or die "cannot bind: $!\n";
print $s->sockport, "\n";'
    fi
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill) cmd_kill "$@" ;;
    free-port) cmd_free_port "$@" ;;
    *) usage ;;
esac
