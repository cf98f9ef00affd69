#!/usr/bin/env bash
# A throwaway MariaDB instance for tests and benchmarks.
#
#   scripts/mariadb.sh start [DIR]   fresh datadir in DIR/data, free port (17100 upward, never
#                                    3306), waits until root@127.0.0.1 (empty password) answers,
#                                    prints the port
#   scripts/mariadb.sh stop  [DIR]   stops the instance of DIR (also a stale one from an
#                                    interrupted run); a no-op when none is running
#   scripts/mariadb.sh port  [DIR]   prints the port of the running instance of DIR
#
# DIR defaults to .e2e/mariadb. The socket, pid file, error log and port file live in DIR.
# The server runs with --no-defaults, so nothing in /etc/mysql applies, and normal grants
# (no --skip-grant-tables): root has an empty password over TCP.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cmd="${1:-}"
DIR="${2:-$E2E_DIR/mariadb}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
DATA="$DIR/data"
PIDFILE="$DIR/mariadbd.pid"
SOCK="$DIR/mariadbd.sock"
PORTFILE="$DIR/port"
ERRLOG="$DIR/error.log"
PORT_START="${MARIADB_PORT_START:-17100}"

# The pid of the server using DATA: from the pid file if that process is a mariadbd with our
# datadir, else a scan of /proc (a run interrupted before the pid file was written).
running_pid() {
    local pid cmdline
    if [ -f "$PIDFILE" ]; then
        pid="$(cat "$PIDFILE" 2>/dev/null || true)"
        if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
            cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
            case "$cmdline" in *"--datadir=$DATA "*) echo "$pid"; return 0 ;; esac
        fi
    fi
    for f in /proc/[0-9]*/cmdline; do
        cmdline="$(tr '\0' ' ' <"$f" 2>/dev/null || true)"
        case "$cmdline" in
            *mariadbd*"--datadir=$DATA "*|*mysqld*"--datadir=$DATA "*)
                pid="${f#/proc/}"; echo "${pid%/cmdline}"; return 0 ;;
        esac
    done
    return 1
}

do_stop() {
    local pid
    if pid="$(running_pid)"; then
        log "stopping mariadbd pid $pid ($DIR)"
        stop_pid "$pid" 60
    fi
    rm -f "$PIDFILE" "$SOCK" "$SOCK.lock" "$PORTFILE"
}

do_start() {
    ensure_apt mariadbd:mariadb-server mariadb-install-db:mariadb-server \
        mariadb:mariadb-client mariadb-admin:mariadb-client python3:python3
    local mariadbd install_db admin client
    mariadbd="$(find_exe mariadbd mysqld)"
    install_db="$(find_exe mariadb-install-db mysql_install_db)"
    admin="$(find_exe mariadb-admin mysqladmin)"
    client="$(find_exe mariadb mysql)"

    do_stop   # a previous or interrupted instance of this DIR

    local user_opt=()
    [ "$(id -u)" -eq 0 ] && user_opt=(--user=root)

    rm -rf "$DATA"
    mkdir -p "$DATA"
    local auth_opt=()
    local help
    help="$("$install_db" --help 2>/dev/null || true)"
    case "$help" in
        *--auth-root-authentication-method*) auth_opt=(--auth-root-authentication-method=normal) ;;
    esac
    log "initialising $DATA"
    if ! "$install_db" --no-defaults "${user_opt[@]}" --datadir="$DATA" "${auth_opt[@]}" \
            --skip-test-db >"$DIR/install.log" 2>&1; then
        cat "$DIR/install.log" >&2
        die "mariadb-install-db failed"
    fi

    local port attempt pid
    port="$PORT_START"
    for attempt in 1 2 3 4 5; do
        port="$(free_port "$port")"
        : >"$ERRLOG"
        # setsid: the server outlives this script and ignores the caller's Ctrl-C; the test
        # driver stops it explicitly.
        setsid "$mariadbd" --no-defaults "${user_opt[@]}" \
            --datadir="$DATA" --port="$port" --bind-address=127.0.0.1 \
            --socket="$SOCK" --pid-file="$PIDFILE" --log-error="$ERRLOG" \
            --skip-name-resolve --max-connections=1000 --max-allowed-packet=64M \
            --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
            </dev/null >>"$ERRLOG" 2>&1 &
        pid=$!
        local i=0 ready=0
        while [ $i -lt 600 ]; do
            if [ -S "$SOCK" ] && "$admin" --no-defaults --protocol=socket -S "$SOCK" -uroot \
                    --connect-timeout=1 ping >/dev/null 2>&1; then
                ready=1; break
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
            i=$((i + 1))
        done
        if [ $ready -eq 1 ]; then
            echo "$port" >"$PORTFILE"
            # root with an empty mysql_native_password from 127.0.0.1 (the server resolves no
            # names), whatever the install script's defaults were.
            "$client" --no-defaults --protocol=socket -S "$SOCK" -uroot -e "
                CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
                ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
                GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
                CREATE DATABASE IF NOT EXISTS test;" \
                || die "could not set up root@127.0.0.1"
            "$client" --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -uroot -e 'select 1' \
                >/dev/null || die "root@127.0.0.1 with an empty password cannot log in"
            log "mariadbd pid $pid ready on 127.0.0.1:$port ($DIR)"
            echo "$port"
            return 0
        fi
        if grep -qi 'address already in use' "$ERRLOG"; then
            log "port $port was taken meanwhile; trying the next one"
            stop_pid "$pid" 10
            port=$((port + 1))
            continue
        fi
        tail -n 40 "$ERRLOG" >&2 || true
        stop_pid "$pid" 10
        die "mariadbd did not become ready (log: $ERRLOG)"
    done
    die "could not find a free port for mariadbd"
}

case "$cmd" in
    start) do_start ;;
    stop) do_stop ;;
    port)
        running_pid >/dev/null && [ -f "$PORTFILE" ] || die "no mariadb running in $DIR"
        cat "$PORTFILE"
        ;;
    *) echo "usage: $0 start|stop|port [DIR]" >&2; exit 2 ;;
esac
