#!/usr/bin/env bash
# Profile-guided build of the `shardgate` binary, the build deployments and `make bench-sysbench`
# run. Per proxied query the gateway's user-space work is a long, flat path (decode, route,
# relay, tokio's scheduling); laying it out and inlining it by a measured profile takes about a
# fifth of its instructions off (callgrind, see the README), more than any single source
# change came near.
#
#   1. build an instrumented binary (profile `production`, target/pgo-instrumented/);
#   2. train it against a throwaway MariaDB with sysbench, both ways the gateway serves:
#      `--backend` pass-through under oltp_read_write (prepared and text) and oltp_read_only,
#      and a keyspace sharded in two (as in bench-readonly) under oltp_read_only — point and
#      range selects, writes, transactions, routing, scatter and merge; deliberately not the
#      oltp_point_select that bench-sysbench measures;
#   3. merge the profile (llvm-profdata of the toolchain's llvm-tools component, installed with
#      rustup when missing) and build again with it (target/pgo/).
#
# Prints the optimised binary's path on stdout; everything else goes to stderr.
# Knobs: PGO_TRAIN_TIME=10 (seconds per training run).
# Production builds leave out `--cfg tokio_unstable`: only the simulator needs it (turmoil seeds
# tokio's scheduler with it), and the binary uses no unstable tokio API.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

PGO_TRAIN_TIME="${PGO_TRAIN_TIME:-10}"
OUT="$E2E_DIR/pgo"
MARIADB_DIR="$OUT/mariadb"
INSTRUMENTED="$REPO_ROOT/target/pgo-instrumented"
OPTIMISED="$REPO_ROOT/target/pgo"
PROFDATA_FILE="$OUT/shardgate.profdata"

ensure_rust
ensure_system_deps
SYSBENCH="$(find_exe sysbench)"
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS # they would override the flags given below

host="$(rustc -vV | awk '/^host:/ { print $2 }')"
LLVM_PROFDATA="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$LLVM_PROFDATA" ]; then
    log "installing rustup's llvm-tools component (llvm-profdata matching rustc's LLVM)"
    rustup component add llvm-tools >&2
fi
[ -x "$LLVM_PROFDATA" ] || die "no llvm-profdata at $LLVM_PROFDATA"

build() { # build TARGET_DIR RUSTFLAGS_TOML
    CARGO_TARGET_DIR="$1" cargo build --config "build.rustflags=$2" --profile production \
        -p shardgate-runtime --bin shardgate >&2
}

mkdir -p "$OUT"
rm -rf "$OUT/build-profiles" "$OUT/train-profiles" "$OUT"/*.log
log "instrumented build (target/pgo-instrumented)"
# Build scripts are instrumented too; their profiles land apart from the training's.
build "$INSTRUMENTED" "[\"-Cprofile-generate=$OUT/build-profiles\"]"

stop_on_exit
MARIADB_STARTED=1
MPORT="$("$REPO_ROOT/scripts/mariadb.sh" start "$MARIADB_DIR")"
sql() { mariadb --no-defaults -h127.0.0.1 -P"$MPORT" -uroot -e "$1"; }
for db in sbtest sb_x80 sb_80x; do sql "drop database if exists $db; create database $db"; done
sb() { # sb PORT TEST ARGS...
    local port="$1" test="$2"; shift 2
    "$SYSBENCH" "$test" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
        --mysql-user=root --mysql-password= --mysql-db=sbtest --tables=2 --table-size=10000 "$@"
}

# train NAME "TEST MODE THREADS"... -- GATEWAY ARGS: runs the instrumented gateway with the
# arguments, loads the tables through it when NAME is `sharded`, then each sysbench run.
train() {
    local name="$1" runs=() run test mode threads port pid ids=()
    shift
    while [ "$1" != -- ]; do runs+=("$1"); shift; done
    shift
    port="$(free_port 17600)"
    LLVM_PROFILE_FILE="$OUT/train-profiles/shardgate-%p.profraw" SHARDGATE_LOG=warn \
        "$INSTRUMENTED/production/shardgate" --listen "127.0.0.1:$port" "$@" \
        </dev/null >"$OUT/shardgate-$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" "$pid" 60 ||
        { tail -n 20 "$OUT/shardgate-$name.log" >&2; die "the instrumented shardgate did not start"; }
    if [ "$name" = sharded ]; then
        ids=(--auto_inc=off) # a sharded table without a sequence needs its vindex column
        sb "$port" oltp_read_only "${ids[@]}" prepare >"$OUT/prepare-$name.log" 2>&1 ||
            { tail -n 20 "$OUT/prepare-$name.log" >&2; die "sysbench prepare ($name) failed"; }
    fi
    for run in "${runs[@]}"; do
        read -r test mode threads <<<"$run"
        log "training ($name): $test --db-ps-mode=$mode, $threads threads, ${PGO_TRAIN_TIME}s"
        sb "$port" "$test" "${ids[@]}" --threads="$threads" --time="$PGO_TRAIN_TIME" --db-ps-mode="$mode" \
            --report-interval=0 run >"$OUT/train-$name-$test-$mode.log" 2>&1 ||
            { tail -n 20 "$OUT/train-$name-$test-$mode.log" >&2; die "training run failed"; }
    done
    stop_pid "$pid" 30 # the profile is written at a clean exit
}

sb "$MPORT" oltp_read_write prepare >"$OUT/prepare-direct.log" 2>&1 ||
    { tail -n 20 "$OUT/prepare-direct.log" >&2; die "sysbench prepare failed"; }
train passthrough "oltp_read_write auto 8" "oltp_read_write disable 8" "oltp_read_only auto 2" \
    -- --backend "mysql://root@127.0.0.1:$MPORT/sbtest"

sysbench_vschema 2 >"$OUT/vschema.json"
train sharded "oltp_read_only auto 4" "oltp_read_only disable 4" \
    -- --vschema "$OUT/vschema.json" \
    --shard "sbtest/-80=mysql://root@127.0.0.1:$MPORT/sb_x80" \
    --shard "sbtest/80-=mysql://root@127.0.0.1:$MPORT/sb_80x"

ls "$OUT"/train-profiles/*.profraw >/dev/null 2>&1 || die "the training run wrote no profile"
"$LLVM_PROFDATA" merge -o "$PROFDATA_FILE" "$OUT"/train-profiles/*.profraw

log "optimised build with $PROFDATA_FILE (target/pgo)"
build "$OPTIMISED" "[\"-Cprofile-use=$PROFDATA_FILE\"]"
echo "$OPTIMISED/production/shardgate"
