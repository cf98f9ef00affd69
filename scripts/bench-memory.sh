#!/usr/bin/env bash
# Memory benchmark (`make bench-memory`): the gateway's resident memory (VmRSS from /proc).
#
# (a) idle connections: BENCH_MEMORY_CONNS (10,000) client connections opened against shardgate
#     over 4 embedded shards and held; each completes the MySQL handshake (root, empty password)
#     with a raw-socket asyncio client written here (no driver: HandshakeResponse41, OK).
#     BENCH_MEMORY_ROUNDS (5) rounds of open / hold / close in one gateway process: round 1 in a
#     fresh process flatters (zeroed allocations not touched yet are not resident); the last
#     round is the steady state of a gateway whose connections come and go, and is what is
#     checked: RSS growth per idle connection <= 64 KiB, and the last round adding at most 10% of
#     that per connection after closing (more would be a leak; fragmentation converges).
# (a') the same in a second gateway process, each connection running `select 1` once (its session
#     then holds a backend connection to one shard: no pool, each session owns its backend
#     connections); reported, and checked for growth between rounds only.
# (b) OLAP stream: BENCH_MEMORY_ROWS (1,000,000) rows in table big over 4 MariaDB shards
#     (databases of one throwaway MariaDB, .e2e/bench-memory/mariadb; the rows are loaded straight
#     into the shard databases, each on the shard its reverse_bits vindex names), streamed by
#     `mariadb --quick` (unbuffered) after `set workload='olap'`; the gateway's RSS is sampled
#     every 20 ms. Twice: a fast reader, and a slow one that stops reading for 5 s after the first
#     64 KiB (the gateway must stop reading the shards meanwhile). Target: growth <= 64 MiB.
#
# Knobs: BENCH_MEMORY_CONNS=10000, BENCH_MEMORY_ROUNDS=5, BENCH_MEMORY_ROWS=1000000,
# BENCH_MEMORY_PARTS="idle select1 olap",
# SG_BIN=path (skip the cargo build). Results: .e2e/bench-memory/results.txt. Exits 1 when a
# target is missed or a check fails.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

CONNS="${BENCH_MEMORY_CONNS:-10000}"
ROWS="${BENCH_MEMORY_ROWS:-1000000}"
PARTS="${BENCH_MEMORY_PARTS:-idle select1 olap}"
ROUNDS="${BENCH_MEMORY_ROUNDS:-5}"
OUT="$E2E_DIR/bench-memory"
MARIADB_DIR="$OUT/mariadb"
TARGET_PER_CONN_KIB=64
TARGET_GROWTH_KIB=$((64 * 1024))

ensure_apt mariadb:mariadb-client python3:python3
CLIENT="$(find_exe mariadb mysql)"
shardgate_bin pgo

# Both the client and the gateway hold one socket per connection.
need_fds=$((CONNS + 1024))
raise_fd_limit "$need_fds"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need_fds" ] \
    || die "open files limit $(ulimit -n) < $need_fds (hard limit $(ulimit -Hn)); lower BENCH_MEMORY_CONNS"
log "open files limit: $(ulimit -n)"

mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.txt
stop_on_exit

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

cat >"$OUT/vschema.json" <<'EOF'
{
  "keyspaces": {
    "ks": {
      "sharded": true,
      "vindexes": { "rb": { "type": "reverse_bits" } },
      "tables": { "big": { "column_vindexes": [{ "column": "id", "name": "rb" }] } }
    }
  }
}
EOF
SHARDS=(-40 40-80 80-c0 c0-)
# reverse_bits puts id on the shard named by its two lowest bits, reversed: 0 -> -40,
# 2 -> 40-80, 1 -> 80-c0, 3 -> c0-
declare -A RESIDUE=([-40]=0 [40-80]=2 [80-c0]=1 [c0-]=3)

# start_gateway NAME ARGS...: sets GW_PID, GW_PORT, GW_HTTP
start_gateway() {
    local name="$1"; shift
    GW_PORT="$(free_port 17900)"
    GW_HTTP="$(free_port $((GW_PORT + 1)))"
    SHARDGATE_LOG=warn "$BIN" --listen "127.0.0.1:$GW_PORT" --http "127.0.0.1:$GW_HTTP" \
        --vschema "$OUT/vschema.json" "$@" </dev/null >"$OUT/gateway-$name.log" 2>&1 &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_port "$GW_PORT" "$GW_PID" 30 || { tail -n 20 "$OUT/gateway-$name.log" >&2; die "gateway did not start"; }
    wait_port "$GW_HTTP" "$GW_PID" 30 || die "gateway http port did not open"
    log "gateway ($name) pid $GW_PID on 127.0.0.1:$GW_PORT"
}

failed=0

run_idle() { # run_idle MODE: idle | select1
    local mode="$1" args=() s
    for s in "${SHARDS[@]}"; do args+=(--shard "ks/$s=embedded"); done
    start_gateway "$mode" "${args[@]}" --max-connections $((CONNS + 100))
    "$CLIENT" --no-defaults -h127.0.0.1 -P"$GW_PORT" -uroot ks \
        -e "create table big (id bigint not null, k int, pad varchar(64), primary key (id))"
    python3 - "$GW_PORT" "$GW_HTTP" "$GW_PID" "$CONNS" "$TARGET_PER_CONN_KIB" "$ROUNDS" "$mode" <<'PY' | tee -a "$OUT/results.txt" || failed=1
import asyncio, json, struct, sys, time, urllib.request

port, http, pid, n, target, rounds = (int(a) for a in sys.argv[1:7])
mode = sys.argv[7]

def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

def sessions():
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{http}/debug/vars", timeout=10))["Sessions"]

def settle():
    # wait until RSS has stopped moving (2 samples 0.5 s apart within 64 KiB), at most 10 s
    last = rss()
    for _ in range(20):
        time.sleep(0.5)
        now = rss()
        if abs(now - last) < 64:
            return now
        last = now
    return last

CAPS = (0x1 | 0x4 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000 | 0x1000000)  # ... DEPRECATE_EOF

async def packet(r):
    h = await r.readexactly(4)
    return h[3], await r.readexactly(h[0] | h[1] << 8 | h[2] << 16)

def frame(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload

async def handshake(sem):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        seq, greeting = await packet(r)
        if greeting[:1] == b"\xff":
            raise RuntimeError(f"refused: {greeting[3:]!r}")
        resp = struct.pack("<IIB", CAPS, 1 << 24, 45) + bytes(23) + b"root\0" + b"\0" \
            + b"mysql_native_password\0"
        w.write(frame(seq + 1, resp))
        seq, p = await packet(r)
        if p[:1] == b"\xfe":  # auth switch: the empty password again
            w.write(frame(seq + 1, b""))
            seq, p = await packet(r)
        if p[:1] != b"\x00":
            raise RuntimeError(f"login failed: {p!r}")
        return r, w

async def select1(conn):
    r, w = conn
    w.write(frame(0, b"\x03select 1"))
    seq, p = await packet(r)
    if p[:1] == b"\xff":
        raise RuntimeError(f"select 1 failed: {p!r}")
    # column count, 1 column definition, 1 row, then the OK terminator (DEPRECATE_EOF)
    while True:
        seq, p = await packet(r)
        if p[:1] == b"\xfe" and len(p) < 0xFFFFFF:
            return
        if p[:1] == b"\xff":
            raise RuntimeError(f"select 1 failed: {p!r}")

async def open_all():
    sem = asyncio.Semaphore(256)
    t0 = time.monotonic()
    conns = await asyncio.gather(*(handshake(sem) for _ in range(n)))
    return conns, time.monotonic() - t0

async def select_all(conns):
    sem = asyncio.Semaphore(512)
    async def one(c):
        async with sem:
            await select1(c)
    await asyncio.gather(*(one(c) for c in conns))

async def close_all(conns):
    for r, w in conns:
        w.close()
    await asyncio.sleep(1)
    for _ in range(100):
        if sessions() == 0:
            break
        await asyncio.sleep(0.2)
    return settle()

mib = lambda k: f"{k / 1024:.1f} MiB"

async def main():
    base = settle()
    held, after = [], []
    for i in range(rounds):
        conns, t_open = await open_all()
        live = sessions()
        if live != n:
            print(f"bench-memory {mode}: round {i + 1}: {live} gateway sessions, expected {n}")
            return False
        if mode == "select1":
            await select_all(conns)
        held.append(settle())
        after.append(await close_all(conns))
    per = [(h - base) / n for h in held]
    what = ("idle connection (handshake only)" if mode == "idle" else
            "connection after `select 1` (its session holds a backend connection to an embedded shard)")
    print(f"bench-memory {mode}: {n} connections (opened in {t_open:.1f}s), {rounds} rounds of open "
          f"/ hold / close; gateway RSS {mib(base)} before; held: "
          + ", ".join(mib(h) for h in held) + "; after closing: " + ", ".join(mib(a) for a in after),
          flush=True)
    print(f"bench-memory {mode}: RSS per {what}: {per[0]:.1f} KiB in round 1 (fresh process), "
          f"{per[-1]:.1f} KiB in round {rounds} (steady state)", flush=True)
    growth = (after[-1] - after[-2]) / n if rounds > 1 else 0.0
    # a leak: the last round still adds more than 10% of a connection's cost (fragmentation
    # makes the first rounds grow, converging)
    leak_ok = growth <= 0.1 * max(per[-1], 1.0)
    leak_text = (f"growth between the last two rounds after closing {growth:+.2f} KiB per "
                 f"connection ({'converging' if leak_ok else 'LEAK?'}: limit 10% of "
                 f"{per[-1]:.1f} KiB)")
    ok = leak_ok
    if mode == "idle":
        ok = ok and per[-1] <= target
        print(f"bench-memory {mode}: {'ok' if ok else 'FAILED'}: target <= {target} KiB per idle "
              f"connection at steady state; {leak_text}", flush=True)
    else:
        print(f"bench-memory {mode}: {'ok' if ok else 'FAILED'}: {leak_text}", flush=True)
    return ok

sys.exit(0 if asyncio.run(main()) else 1)
PY
    stop_pid "$GW_PID" 10
}

run_olap() {
    MPORT="$(MARIADB_PORT_START=17800 "$REPO_ROOT/scripts/mariadb.sh" start "$MARIADB_DIR")"
    MARIADB_STARTED=1
    local per=$(((ROWS + 3) / 4)) s db args=() t0
    t0=$(date +%s.%N)
    for s in "${SHARDS[@]}"; do
        db="bm_ks_${s//-/x}"
        # ids r, r+4, r+8, ... below ROWS
        local count=$(((ROWS - RESIDUE[$s] + 3) / 4))
        "$CLIENT" --no-defaults -h127.0.0.1 -P"$MPORT" -uroot -e "
            drop database if exists $db; create database $db; use $db;
            create table big (id bigint not null, k int not null, pad varchar(64), primary key (id));
            $( [ "$count" -gt 0 ] && echo "insert into big select seq * 4 + ${RESIDUE[$s]}, seq % 1000, repeat('p', 40) from seq_0_to_$((count - 1));" )"
        args+=(--shard "ks/$s=mysql://root@127.0.0.1:$MPORT/$db")
    done
    log "loaded $ROWS rows into 4 shard databases in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
    start_gateway olap "${args[@]}"
    local n
    n="$("$CLIENT" --no-defaults -h127.0.0.1 -P"$GW_PORT" -uroot -N ks -e 'select count(*) from big')"
    [ "$n" = "$ROWS" ] || die "count(*) through the gateway: $n, expected $ROWS"
    local mode
    for mode in fast slow; do
        local base peak rows t1 secs sampler
        base="$(rss_kib "$GW_PID")"
        ( while kill -0 "$GW_PID" 2>/dev/null; do rss_kib "$GW_PID"; sleep 0.02; done ) >"$OUT/rss-$mode.txt" &
        sampler=$!
        t1=$(date +%s.%N)
        if [ "$mode" = fast ]; then
            rows="$("$CLIENT" --no-defaults -h127.0.0.1 -P"$GW_PORT" -uroot -N --batch --quick ks \
                -e "set workload='olap'; select id, k, pad from big" | wc -l)"
        else
            rows="$("$CLIENT" --no-defaults -h127.0.0.1 -P"$GW_PORT" -uroot -N --batch --quick ks \
                -e "set workload='olap'; select id, k, pad from big" \
                | { dd bs=64k count=1 status=none; sleep 5; cat; } | wc -l)"
        fi
        secs="$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')"
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        peak="$(sort -n "$OUT/rss-$mode.txt" | tail -n 1)"
        local growth=$((peak - base)) verdict=ok
        if [ "$rows" != "$ROWS" ] || [ "$growth" -gt "$TARGET_GROWTH_KIB" ]; then verdict=FAILED; failed=1; fi
        echo "bench-memory olap ($mode reader$([ "$mode" = slow ] && echo ', 5 s pause after 64 KiB')): $rows rows over 4 MariaDB shards in ${secs}s; gateway RSS $((base / 1024)) MiB before, peak $((peak / 1024)) MiB: growth $((growth / 1024)).$(((growth % 1024) * 10 / 1024)) MiB (target <= 64 MiB; $(wc -l <"$OUT/rss-$mode.txt") samples) $verdict" \
            | tee -a "$OUT/results.txt"
    done
    stop_pid "$GW_PID" 10
    "$REPO_ROOT/scripts/mariadb.sh" stop "$MARIADB_DIR" || true
    MARIADB_STARTED=0
}

for part in $PARTS; do
    case "$part" in
        idle) run_idle idle ;;
        select1) run_idle select1 ;;
        olap) run_olap ;;
        *) die "unknown part $part (idle | select1 | olap)" ;;
    esac
done
log "results: $OUT/results.txt"
exit $failed
