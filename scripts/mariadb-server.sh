#!/usr/bin/env bash
# Runs a private, throw-away MariaDB server for the WhyCache test suite, without systemd: a primary,
# or a replica of one (asynchronous replication over TCP, by GTID).
#
# Everything the server needs lives in one folder DIR:
#   DIR/data          the data directory (created by mariadb-install-db on the first start); it also
#                     holds the binary log (mysql-bin.*) and, on a replica, the relay log (relay-bin.*)
#                     and the replication settings (master.info, relay-log.info)
#   DIR/mysqld.sock   the server's Unix socket (root logs in through it, by socket authentication)
#   DIR/mysqld.pid    the server's pid file
#   DIR/error.log     the server's error log
#   DIR/install.log   the output of mariadb-install-db
#   DIR/mariadbd.out  whatever the server writes to stdout/stderr outside its error log
#
# Usage:
#   mariadb-server.sh start DIR PORT         create DIR/data if needed, start the server, wait until it answers
#   mariadb-server.sh start-replica DIR PORT PRIMARY_PORT
#                                            create DIR/data if needed, start the server as a read-only
#                                            replica of the primary on 127.0.0.1:PRIMARY_PORT; on the first
#                                            start, also wait until it has copied everything the primary had
#   mariadb-server.sh stop DIR               SIGTERM the server and wait until the process is gone
#   mariadb-server.sh kill DIR               SIGKILL the server (a simulated crash) and wait until it is gone
#   mariadb-server.sh sql DIR SQL            run SQL (one or more statements) as the admin through DIR's
#                                            socket and print the result in --batch form (tab-separated,
#                                            with a header line); e.g. "STOP SLAVE SQL_THREAD" makes a
#                                            replica lag, "START SLAVE SQL_THREAD" lets it catch up
#   mariadb-server.sh free-port              print a TCP port that is free on 127.0.0.1
#
# Every server (primary or replica) writes a binary log in ROW format, so that any of them can be a
# primary, and has server id PORT (unique among the servers on this machine, as the ports are).
#
# On the first start of a primary (only when DIR/data was just created) it creates, in this order:
# the replication user whycache_repl@127.0.0.1 / whycache_repl@localhost (password
# whycache-repl-password) with REPLICATION SLAVE and REPLICATION CLIENT on *.*; then the database
# whycache_test and the user whycache@127.0.0.1 / whycache@localhost (password
# whycache-test-password) with all privileges on it and on every database named whycache_*, and the
# global monitoring privileges BINLOG MONITOR (formerly REPLICATION CLIENT), SLAVE MONITOR and
# PROCESS, so that it can run SHOW SLAVE STATUS, SHOW MASTER STATUS and SHOW PROCESSLIST (SHOW GLOBAL
# STATUS needs no privilege).
# All of it is in the binary log, so a replica copies the users and the database as well.
#
# A replica runs with --read-only=1 (the test user can log in and read, but not write; the
# replication threads still apply the primary's changes), --log-slave-updates and 4 parallel
# replication threads in optimistic mode. On its first start (when DIR/data/master.info does not exist
# yet) it is pointed at the primary by CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos,
# MASTER_CONNECT_RETRY=1 and START SLAVE, and the command waits until the replica has applied
# everything that was in the primary's binary log when it started (so the test database and user are
# there). A later start of a stopped or killed replica only starts the server: replication resumes by
# itself from where it stopped (from the GTID position it had applied), even if STOP SLAVE had stopped
# it before, and PRIMARY_PORT is not used.
#
# A later start of a stopped or killed server reuses DIR/data and keeps its data.
#
# Every mariadb program gets --no-defaults as its FIRST option: it must come first, or the
# program reads /etc/mysql/my.cnf (and ~/.my.cnf) and the machine's configuration leaks in.
set -euo pipefail

# mariadbd is in /usr/sbin, which is not on an ordinary user's PATH on Debian.
PATH=$PATH:/usr/sbin:/sbin

readonly TEST_DATABASE=whycache_test
readonly TEST_USER=whycache
readonly TEST_PASSWORD=whycache-test-password
readonly REPLICATION_USER=whycache_repl
readonly REPLICATION_PASSWORD=whycache-repl-password
readonly START_TIMEOUT=30    # seconds to wait for the server to answer
readonly STOP_TIMEOUT=60     # seconds to wait for the server to exit after SIGTERM
readonly CATCH_UP_TIMEOUT=30 # seconds to wait for a new replica to copy what the primary has

usage() {
    echo "usage: $0 start DIR PORT | start-replica DIR PORT PRIMARY_PORT | stop DIR | kill DIR | sql DIR SQL | free-port" >&2
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
    for fd in "/proc/$$/fd/"*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

# Set by launch_server for its caller: DIR as an absolute path, the server's pid, and whether DIR/data
# was just created (1) or already there (0).
server_dir=
server_pid=
server_fresh=0

# Kills the server that launch_server started and, when its data directory was just created, deletes
# that, so that the next start provisions it again; then exits with status 1.
abandon_start() {
    disown "$server_pid" 2>/dev/null || true # no "Killed" notice from bash
    kill -KILL "$server_pid" 2>/dev/null || true
    wait_gone "$server_pid" 10 || true
    rm -f "$server_dir/mysqld.pid"
    [ "$server_fresh" -eq 0 ] || rm -rf "$server_dir/data"
    exit 1
}

# launch_server DIR PORT [MARIADBD_OPTION...]: creates DIR/data if needed, starts mariadbd on PORT with
# the options every server gets (binary log, server id PORT) and the extra ones given, and waits until
# it answers on its socket. Sets server_dir, server_pid and server_fresh.
launch_server() {
    local dir=$1 port=$2 user i
    shift 2
    close_inherited_descriptors
    if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
        die "PORT must be a number from 1 to 65535, got '$port'"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd) # mariadbd wants absolute paths
    server_dir=$dir
    server_fresh=0
    user=$(server_user)

    if [ -n "$(server_pid "$dir")" ]; then
        die "a server is already running in $dir (pid $(server_pid "$dir"))"
    fi

    # A data directory that mariadb-install-db completed has the system database "mysql" in it.
    if [ ! -d "$dir/data/mysql" ]; then
        # --skip-test-db: no anonymous "test" database; socket authentication: root has no password
        # and only the system user $user can log in as root, through the socket. An install that
        # fails (seen once on a loaded machine, without a cause in its log) is tried again from
        # an empty folder, up to three times.
        local attempt
        for attempt in 1 2 3; do
            rm -rf "$dir/data" # leftovers of an interrupted or failed install
            if mariadb-install-db --no-defaults --user="$user" --datadir="$dir/data" \
                --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1; then
                break
            fi
            echo "mariadb-server.sh: mariadb-install-db failed (attempt $attempt of 3); its log begins:" >&2
            head -n 15 "$dir/install.log" >&2
            if [ "$attempt" -eq 3 ]; then
                rm -rf "$dir/data"
                exit 1
            fi
            sleep 1
        done
        server_fresh=1
    fi

    # Start the server detached: setsid puts it in its own session (so it survives the caller's
    # shell and does not get the terminal's signals), nohup ignores SIGHUP, stdin comes from
    # /dev/null, and stdout/stderr go to a file, so that a caller reading this script's output
    # through a pipe does not wait for the server to close it. The port is the server id: replication
    # needs a different one on every server, and no two servers here share a port. The binary log is
    # on for every server (mysql-bin.* in DIR/data), so that any of them can be a primary.
    setsid nohup mariadbd --no-defaults --user="$user" --datadir="$dir/data" \
        --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --port="$port" \
        --bind-address=127.0.0.1 --skip-name-resolve --log-error="$dir/error.log" \
        --innodb-buffer-pool-size=256M --max-connections=500 \
        --server-id="$port" --log-bin=mysql-bin --binlog-format=ROW "$@" \
        </dev/null >>"$dir/mariadbd.out" 2>&1 &
    server_pid=$! # setsid execs (no fork) because a background job of a script is not a group leader

    # Wait until the server answers on its socket. `ping` succeeds as soon as the server accepts
    # connections (even if the login were refused), and fails while the socket is not there yet.
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" --connect-timeout=2 \
            ping >/dev/null 2>&1; then
            return 0
        fi
        if ! alive "$server_pid"; then
            echo "mariadb-server.sh: the server in $dir exited during startup" >&2
            show_logs "$dir"
            [ "$server_fresh" -eq 0 ] || rm -rf "$dir/data" # so that the next start provisions it again
            exit 1
        fi
        sleep 0.1
    done
    echo "mariadb-server.sh: the server in $dir did not answer within ${START_TIMEOUT}s" >&2
    show_logs "$dir"
    abandon_start
}

cmd_start() {
    [ $# -eq 2 ] || usage
    local dir port=$2 host
    launch_server "$1" "$port"
    dir=$server_dir

    # First start: create the replication user, then the test database and the test user (over TCP
    # they come from 127.0.0.1, over the socket from localhost; --skip-name-resolve means hosts are
    # matched by IP). The replication user comes first so that a replica, which replays the binary
    # log from its beginning, creates it too and then everything else. The test user also gets rights
    # on every database named whycache_*, existing or not, so that a test that names a missing one
    # gets "unknown database" rather than "access denied"; and the global monitoring privileges, so
    # that it can read the replication status on a replica (SHOW SLAVE STATUS needs SLAVE MONITOR in
    # MariaDB 10.11; SHOW MASTER STATUS and SHOW BINARY LOGS need BINLOG MONITOR, which is what
    # REPLICATION CLIENT means since 10.5; SHOW GLOBAL STATUS needs nothing). (No SQL comments in the
    # statements: the client drops everything after a "--" comment in -e text.)
    if [ "$server_fresh" -eq 1 ]; then
        local sql=""
        for host in 127.0.0.1 localhost; do
            sql+="
            CREATE USER IF NOT EXISTS '$REPLICATION_USER'@'$host' IDENTIFIED BY '$REPLICATION_PASSWORD';
            GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '$REPLICATION_USER'@'$host';"
        done
        sql+="
            CREATE DATABASE IF NOT EXISTS \`$TEST_DATABASE\`;"
        for host in 127.0.0.1 localhost; do
            sql+="
            CREATE USER IF NOT EXISTS '$TEST_USER'@'$host' IDENTIFIED BY '$TEST_PASSWORD';
            GRANT ALL PRIVILEGES ON \`$TEST_DATABASE\`.* TO '$TEST_USER'@'$host';
            GRANT ALL PRIVILEGES ON \`whycache\\_%\`.* TO '$TEST_USER'@'$host';
            GRANT BINLOG MONITOR, SLAVE MONITOR, PROCESS ON *.* TO '$TEST_USER'@'$host';"
        done
        if ! admin_sql "$dir" "$sql"; then
            echo "mariadb-server.sh: could not create the replication user, the test database and user in $dir" >&2
            show_logs "$dir"
            abandon_start
        fi
    fi
}

# Prints the value of FIELD in the replica's SHOW SLAVE STATUS (read from the vertical form
# "   Field: value" in $1), or nothing.
slave_status_field() {
    local status=$1 field=$2
    sed -n "s/^ *$field: //p" <<<"$status"
}

cmd_start_replica() {
    [ $# -eq 3 ] || usage
    local dir port=$2 primary_port=$3 target status io sqlt io_error sql_error i
    [[ $primary_port =~ ^[0-9]+$ ]] || die "PRIMARY_PORT must be a number, got '$primary_port'"
    [ "$port" != "$primary_port" ] || die "PORT and PRIMARY_PORT must differ"
    # The relay log gets a fixed name (by default it is named after the host). The replication
    # threads start by themselves whenever the server starts, once CHANGE MASTER has been run.
    launch_server "$1" "$port" --relay-log=relay-bin --log-slave-updates --read-only=1 \
        --slave-parallel-threads=4 --slave-parallel-mode=optimistic
    dir=$server_dir

    # master.info is written by CHANGE MASTER: once it is there, the replica is set up and replication
    # has resumed by itself. (Checked rather than server_fresh so that a start interrupted between
    # mariadb-install-db and CHANGE MASTER is completed by the next one.)
    [ ! -s "$dir/data/master.info" ] || return 0

    # The primary's binary log position now: everything up to it (the replication user, the test
    # database and user, and any tables and rows written since) is what the new replica must copy
    # before this command returns. The replication user needs no privilege to read it.
    if ! target=$(mariadb --no-defaults --host=127.0.0.1 --port="$primary_port" \
        --user="$REPLICATION_USER" --password="$REPLICATION_PASSWORD" --connect-timeout=5 \
        --batch --skip-column-names -e 'SELECT @@GLOBAL.gtid_binlog_pos'); then
        echo "mariadb-server.sh: cannot read the binary log position of the primary on 127.0.0.1:$primary_port" >&2
        abandon_start
    fi

    # MASTER_USE_GTID=slave_pos: a new replica (empty gtid_slave_pos) starts at the beginning of the
    # primary's binary log, and after a restart it resumes after the last transaction it applied.
    # MASTER_CONNECT_RETRY=1: reconnect a second after losing the primary, not 60.
    if ! admin_sql "$dir" "
        CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$primary_port,
            MASTER_USER='$REPLICATION_USER', MASTER_PASSWORD='$REPLICATION_PASSWORD',
            MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
        START SLAVE;
    "; then
        echo "mariadb-server.sh: could not start replication in $dir" >&2
        show_logs "$dir"
        abandon_start
    fi

    # Wait until both replication threads run and the replica has applied everything up to target
    # (MASTER_GTID_WAIT(pos, 0) is 0 when it has, -1 when not yet), and the test database and user
    # are there. Stop waiting at once if the SQL thread stopped on an error.
    for ((i = 0; i < CATCH_UP_TIMEOUT * 10; i++)); do
        status=$(mariadb --no-defaults --socket="$dir/mysqld.sock" --user="$(server_user)" \
            --batch --vertical -e 'SHOW SLAVE STATUS') || status=""
        io=$(slave_status_field "$status" Slave_IO_Running)
        sqlt=$(slave_status_field "$status" Slave_SQL_Running)
        sql_error=$(slave_status_field "$status" Last_SQL_Error)
        if [ "$io" = Yes ] && [ "$sqlt" = Yes ] &&
            [ "$(admin_sql "$dir" "SELECT MASTER_GTID_WAIT('$target', 0) = 0
                AND EXISTS (SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$TEST_DATABASE')
                AND EXISTS (SELECT 1 FROM mysql.global_priv WHERE User = '$TEST_USER' AND Host = '127.0.0.1')" |
                tail -n 1)" = 1 ]; then
            return 0
        fi
        if [ "$sqlt" = No ] && [ -n "$sql_error" ]; then break; fi
        sleep 0.1
    done
    io_error=$(slave_status_field "$status" Last_IO_Error)
    echo "mariadb-server.sh: the replica in $dir did not catch up with the primary on" \
        "127.0.0.1:$primary_port (up to GTID $target) within ${CATCH_UP_TIMEOUT}s:" \
        "Slave_IO_Running=$io, Slave_SQL_Running=$sqlt," \
        "Last_IO_Error=${io_error:-none}, Last_SQL_Error=${sql_error:-none}" >&2
    show_logs "$dir"
    abandon_start
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

cmd_sql() {
    [ $# -eq 2 ] || usage
    local dir=$1 sql=$2
    [ -S "$dir/mysqld.sock" ] || die "no server socket in $dir"
    admin_sql "$dir" "$sql"
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
    start-replica) cmd_start_replica "$@" ;;
    sql) cmd_sql "$@" ;;
    stop) cmd_stop "$@" ;;
    kill) cmd_kill "$@" ;;
    free-port) cmd_free_port "$@" ;;
    *) usage ;;
esac
