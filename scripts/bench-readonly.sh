#!/usr/bin/env bash
# sysbench oltp_read_only, the benchmark target of issue 3: one throwaway MariaDB holding
#   direct     one database `sbtest` (all rows), sysbench -> MariaDB
#   shardgate  two shard databases sb_x80 (ks/-80) and sb_80x (ks/80-), sysbench -> shardgate,
#              with a vschema where sbtest1..N are sharded by `hash` on `id`
# Both are loaded by `sysbench oltp_read_only prepare --auto_inc=off` (explicit ids 1..N: a
# sharded table without a sequence needs its vindex column): directly for `sbtest`, and *through the
# gateway* for the shards (its CREATE TABLE goes to every shard, each inserted row to the shard
# of its keyspace id, so each shard holds exactly its half). Then the same read-only run on both
# (point selects routed to one shard; BETWEEN ranges, SUM, ORDER BY, DISTINCT scattered and
# merged at the gateway); prints both QPS figures and the ratio shardgate / direct.
#
# Knobs (environment): BENCH_TIME=20 (seconds per run), BENCH_THREADS=4, BENCH_TABLES=1,
# BENCH_TABLE_SIZE=10000, BENCH_PS_MODE=auto (auto: prepared statements; disable: text),
# SG_BIN=path (skip the cargo build), SG_ARGS (more gateway options).
# Results: printed, and kept in .e2e/bench-readonly/results.txt; logs next to it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

BENCH_TIME="${BENCH_TIME:-20}"
BENCH_THREADS="${BENCH_THREADS:-4}"
BENCH_TABLES="${BENCH_TABLES:-1}"
BENCH_TABLE_SIZE="${BENCH_TABLE_SIZE:-10000}"
BENCH_PS_MODE="${BENCH_PS_MODE:-auto}"
OUT="$E2E_DIR/bench-readonly"
MARIADB_DIR="$OUT/mariadb"

ensure_system_deps
SYSBENCH="$(find_exe sysbench)"
CLIENT="$(find_exe mariadb)"
shardgate_bin pgo

mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT/results.txt"
stop_on_exit

MARIADB_STARTED=1
MPORT="$(MARIADB_PORT_START=17800 "$REPO_ROOT/scripts/mariadb.sh" start "$MARIADB_DIR")"
sql() { "$CLIENT" --no-defaults -h127.0.0.1 -P"$MPORT" -uroot -e "$1"; }
count() { "$CLIENT" --no-defaults -h127.0.0.1 -P"$MPORT" -uroot -N -e "select count(*) from $1"; }
sql "set global max_connections = 500"
for db in sbtest sb_x80 sb_80x; do
    sql "drop database if exists $db; create database $db"
done

sysbench_vschema "$BENCH_TABLES" >"$OUT/vschema.json"

GPORT="$(free_port 17810)"
# shellcheck disable=SC2086 # SG_ARGS is a list of options
SHARDGATE_LOG="${SHARDGATE_LOG:-warn}" "$BIN" --listen "127.0.0.1:$GPORT" \
    --vschema "$OUT/vschema.json" \
    --shard "sbtest/-80=mysql://root@127.0.0.1:$MPORT/sb_x80" \
    --shard "sbtest/80-=mysql://root@127.0.0.1:$MPORT/sb_80x" \
    ${SG_ARGS:-} </dev/null >"$OUT/shardgate.log" 2>&1 &
GPID=$!
PIDS+=("$GPID")
wait_port "$GPORT" "$GPID" 60 || { tail -n 20 "$OUT/shardgate.log" >&2; die "shardgate did not start"; }
log "shardgate pid $GPID on 127.0.0.1:$GPORT over sb_x80 (-80) and sb_80x (80-)"

sb() { # sb PORT ARGS...
    local port="$1"; shift
    "$SYSBENCH" oltp_read_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
        --mysql-user=root --mysql-password= --mysql-db=sbtest --tables="$BENCH_TABLES" \
        --table-size="$BENCH_TABLE_SIZE" --auto_inc=off "$@"
}

log "sysbench prepare, direct ($BENCH_TABLES table(s) x $BENCH_TABLE_SIZE rows)"
sb "$MPORT" prepare >"$OUT/prepare-direct.log" 2>&1 \
    || { tail -n 20 "$OUT/prepare-direct.log" >&2; die "sysbench prepare (direct) failed"; }
log "sysbench prepare, through shardgate (rows split by keyspace id)"
sb "$GPORT" prepare >"$OUT/prepare-shardgate.log" 2>&1 \
    || { tail -n 20 "$OUT/prepare-shardgate.log" >&2; die "sysbench prepare (through shardgate) failed"; }

# Each shard holds its half, and the halves add up to the whole.
for i in $(seq 1 "$BENCH_TABLES"); do
    a="$(count "sb_x80.sbtest$i")"
    b="$(count "sb_80x.sbtest$i")"
    log "sbtest$i: -80 holds $a rows, 80- holds $b rows"
    [ "$((a + b))" -eq "$BENCH_TABLE_SIZE" ] || die "shards hold $((a + b)) rows of sbtest$i, not $BENCH_TABLE_SIZE"
    [ "$a" -gt 0 ] && [ "$b" -gt 0 ] || die "one shard of sbtest$i is empty"
done

failed=0
run() { # run NAME PORT: writes the QPS to $OUT/qps-NAME (empty on failure)
    local name="$1" port="$2" logf="$OUT/run-$1.log"
    log "run: $name, $BENCH_THREADS thread(s), ${BENCH_TIME}s, --db-ps-mode=$BENCH_PS_MODE"
    if sb "$port" --threads="$BENCH_THREADS" --time="$BENCH_TIME" --db-ps-mode="$BENCH_PS_MODE" \
            --report-interval=0 run >"$logf" 2>&1; then
        # "    queries:      123456 (12345.67 per sec.)"; errors must be 0
        local errs
        errs="$(awk '/^ *ignored errors:/ { print $3 }' "$logf")"
        [ "${errs:-0}" = "0" ] || { log "$name: $errs ignored errors"; failed=1; }
        awk '/^ *queries:/ { gsub(/\(/, "", $3); print $3 }' "$logf" >"$OUT/qps-$name"
    else
        log "sysbench failed ($name):"
        tail -n 15 "$logf" >&2 || true
        failed=1
        : >"$OUT/qps-$name"
    fi
}
run direct "$MPORT"
run shardgate "$GPORT"
QD="$(cat "$OUT/qps-direct")"
QG="$(cat "$OUT/qps-shardgate")"

python3 - "$QD" "$QG" "$BENCH_THREADS" "$BENCH_TIME" "$BENCH_PS_MODE" "$BENCH_TABLE_SIZE" \
    "$BENCH_TABLES" <<'PY' | tee "$OUT/results.txt"
import sys
qd, qg, threads, secs, mode, size, tables = sys.argv[1:]
f = lambda v: f"{float(v):.0f}" if v else "n/a"
ratio = f"{float(qg) / float(qd):.2f}" if qd and qg and float(qd) else "n/a"
print()
print(f"sysbench oltp_read_only, {tables} table(s) x {size} rows, {threads} threads, {secs} s, "
      f"{'prepared' if mode == 'auto' else 'text' if mode == 'disable' else mode} statements; "
      "one MariaDB server")
print(f"  direct, 1 database            qps {f(qd)}")
print(f"  shardgate, 2 shards (hash id)  qps {f(qg)}")
print(f"  shardgate / direct             {ratio}")
PY
log "results: $OUT/results.txt; logs: $OUT/"
exit $failed
