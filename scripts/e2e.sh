#!/usr/bin/env bash
# End-to-end tests with real clients (e2e/, pytest), run by `make test`.
#
# Installs what is missing (MariaDB, sysbench, haproxy, the Python, Node and Java clients),
# builds the release binary, starts a throwaway MariaDB (scripts/mariadb.sh) and two gateways on
# free ports:
#   backend   shardgate --listen ... --backend mysql://root@127.0.0.1:$MARIADB_PORT/test
#   embedded  shardgate --listen ...              (the embedded default, simulated engine)
# runs pytest against MariaDB directly and through both gateways, and tears everything down.
# e2e/test_differential.py starts gateways of its own (scenarios/sql over 2 and 4 embedded shards
# and over 2 MariaDB shards, databases diff_c_* of the same MariaDB; pid files in .e2e/run/).
# Exits non-zero when a test fails or a gateway died during the run.
#
#   scripts/e2e.sh [pytest args...]     e.g. scripts/e2e.sh -k prepared -x
#   SG_TARGETS=direct scripts/e2e.sh    MariaDB only: checks the tests, builds nothing
#   SG_BIN=path/to/shardgate            use that binary instead of building one
# Logs (gateways, MariaDB) stay in .e2e/run/ and .e2e/mariadb/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

TARGETS="${SG_TARGETS:-direct,backend,embedded}"
want() { case ",$TARGETS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
PYTEST_TIMEOUT_S="${SG_PYTEST_TIMEOUT_S:-900}"

ensure_system_deps
PY="$(ensure_python)"
ensure_node_clients
ensure_java_clients
log "python: $PY"

BIN=""
if want backend || want embedded; then
    shardgate_bin
fi

RUN_DIR="$E2E_DIR/run"
# Gateways left over by a run that was killed outright (the pid files name them).
for f in "$RUN_DIR"/*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'shardgate'; then
        log "stopping leftover gateway pid $pid ($(basename "$f" .pid))"
        stop_pid "$pid" 10
    fi
done
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
MARIADB_DIR="$E2E_DIR/mariadb"
stop_on_exit

# start_gateway NAME ARGS...: starts shardgate on a free port, waits for it, prints the port.
start_gateway() {
    local name="$1"; shift
    local port pid attempt
    port=17200
    for attempt in 1 2 3; do
        port="$(free_port "$port")"
        SHARDGATE_LOG="${SHARDGATE_LOG:-info}" "$BIN" --listen "127.0.0.1:$port" "$@" \
            </dev/null >"$RUN_DIR/$name.log" 2>&1 &
        pid=$!
        if wait_port "$port" "$pid" 60; then
            PIDS+=("$pid")
            echo "$pid" >"$RUN_DIR/$name.pid"
            echo "$port" >"$RUN_DIR/$name.port"
            log "$name gateway pid $pid on 127.0.0.1:$port: $BIN --listen 127.0.0.1:$port $*"
            return 0
        fi
        if kill -0 "$pid" 2>/dev/null; then
            stop_pid "$pid" 5
            tail -n 30 "$RUN_DIR/$name.log" >&2 || true
            die "$name gateway did not listen on $port within 60s"
        fi
        log "$name gateway exited at start (attempt $attempt):"
        tail -n 30 "$RUN_DIR/$name.log" >&2 || true
        port=$((port + 1))
    done
    die "could not start the $name gateway"
}

MARIADB_STARTED=1
MARIADB_PORT="$("$REPO_ROOT/scripts/mariadb.sh" start "$MARIADB_DIR")"
export SG_MARIADB_PORT="$MARIADB_PORT"
REQUIRED="direct"
unset SG_BACKEND_PORT SG_EMBEDDED_PORT

if want backend; then
    start_gateway backend --backend "mysql://root@127.0.0.1:$MARIADB_PORT/test"
    export SG_BACKEND_PORT="$(cat "$RUN_DIR/backend.port")"
    REQUIRED="$REQUIRED,backend"
fi
if want embedded; then
    start_gateway embedded
    export SG_EMBEDDED_PORT="$(cat "$RUN_DIR/embedded.port")"
    REQUIRED="$REQUIRED,embedded"
fi
export SG_REQUIRE_TARGETS="$REQUIRED"

rc=0
timeout --foreground "$PYTEST_TIMEOUT_S" "$PY" -m pytest "$REPO_ROOT/e2e" -p no:cacheprovider \
    -o console_output_style=classic -rfEs "$@" || rc=$?
[ $rc -eq 124 ] && log "pytest timed out after ${PYTEST_TIMEOUT_S}s"

for name in backend embedded; do
    [ -f "$RUN_DIR/$name.pid" ] || continue
    pid="$(cat "$RUN_DIR/$name.pid")"
    if ! kill -0 "$pid" 2>/dev/null; then
        log "the $name gateway died during the tests; last lines of its log:"
        tail -n 40 "$RUN_DIR/$name.log" >&2 || true
        rc=1
    fi
done

# The no-argument default: shardgate serves the embedded default on 127.0.0.1:15306.
if [ -n "$BIN" ] && want embedded; then
    if port_is_free 15306; then
        "$BIN" </dev/null >"$RUN_DIR/default.log" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        echo "$pid" >"$RUN_DIR/default.pid"
        if wait_port 15306 "$pid" 30 \
            && out="$(mariadb -h127.0.0.1 -P15306 -uroot --batch -e 'select 1' 2>&1)" \
            && [ "$out" = $'1\n1' ]; then
            log "shardgate with no arguments answers on 127.0.0.1:15306"
        else
            log "shardgate with no arguments does not answer 'select 1' on 127.0.0.1:15306: ${out:-}"
            tail -n 20 "$RUN_DIR/default.log" >&2 || true
            rc=1
        fi
        stop_pid "$pid" 10
    else
        log "127.0.0.1:15306 is in use; skipping the check of the no-argument default"
    fi
fi

if [ $rc -ne 0 ]; then
    log "FAILED (exit $rc); gateway logs: $RUN_DIR/*.log, MariaDB log: $MARIADB_DIR/error.log"
else
    log "end-to-end tests passed"
fi
exit $rc
