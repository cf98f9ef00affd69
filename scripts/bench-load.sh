#!/usr/bin/env bash
# Load benchmark (`make bench-load`): BENCH_LOAD_CONNS (1000) concurrent client connections for
# BENCH_LOAD_TIME (60) seconds running a mixed workload against shardgate over 4 shards
# (ks/-40, ks/40-80, ks/80-c0, ks/c0-; table t sharded by `hash` on id, BENCH_LOAD_ROWS rows):
#
#   50%  point select by the vindex      select c from t where id = ?
#   15%  IN select (5 ids, 1-4 shards)   select id, k from t where id in (?, ?, ?, ?, ?)
#    5%  scatter count                   select count(*) from t
#   15%  update by the vindex            update t set k = k + 1 where id = ?
#   15%  insert (new ids)                insert into t (id, k, c, pad) values (...)
#
# Load generator: sysbench 1.0 running a Lua script written here, one thread and one connection
# per client, one statement per event, text protocol. The script times every statement itself
# (CLOCK_MONOTONIC) and keeps per-thread log histograms, so QPS and p50/p95/p99 cover exactly the
# measured window. Before that window every connection, one every BENCH_LOAD_RAMP_S / CONNS
# seconds, runs a scatter count so its session opens its 4 backend connections (a ramp-up: without
# it, the 4,000 MariaDB connects of the first second overflow MariaDB's listen backlog and the
# sessions whose backend handshake is lost hang; see below).
#
# Reported: QPS, latency p50/p95/p99/max, errors (every statement that failed, warm-up included,
# by code, plus the gateway's shardgate_errors_total; must be 0: the script exits 1 otherwise),
# the gateway's CPU over the window and its RSS (before, peak, end; sampled every second), the
# peak of live gateway sessions (/debug/vars). Results: .e2e/bench-load/results.txt.
#
# Backends (BENCH_LOAD_BACKENDS, space-separated, run in turn; default "embedded mariadb"):
#   embedded   4 in-process shards (`--shard ks/-40=embedded` ...): the shards' engine (a simulated
#              test double) runs inside the gateway process, so the gateway's CPU and RSS include
#              the shards' data and work
#   mariadb    4 databases of one throwaway MariaDB (.e2e/bench-load/mariadb, port 17700 up) as
#              the 4 shards. Each client session owns its backend connections (no pool), so up to
#              4 x CONNS MariaDB connections: max_connections is raised to match
#
# The gateway runs with BENCH_LOAD_GATEWAY_ARGS (default "--query-timeout-ms 30000": a statement
# stuck on a backend that never answers becomes an error instead of a hang). sysbench is killed
# after TIME + RAMP + 180 s whatever happens.
#
# Knobs: BENCH_LOAD_TIME=60, BENCH_LOAD_CONNS=1000, BENCH_LOAD_ROWS=10000, BENCH_LOAD_RAMP_S=10,
# BENCH_LOAD_MIX="point=50,in=15,count=5,update=15,insert=15" (weights),
# BENCH_LOAD_BACKENDS="embedded mariadb", BENCH_LOAD_THREADS (gateway --threads; default: cores),
# BENCH_LOAD_GATEWAY_ARGS, SG_BIN=path (skip the cargo build). Loopback only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

TIME="${BENCH_LOAD_TIME:-60}"
CONNS="${BENCH_LOAD_CONNS:-1000}"
ROWS="${BENCH_LOAD_ROWS:-10000}"
MIX="${BENCH_LOAD_MIX:-point=50,in=15,count=5,update=15,insert=15}"
RAMP_S="${BENCH_LOAD_RAMP_S:-10}"
GATEWAY_ARGS="${BENCH_LOAD_GATEWAY_ARGS---query-timeout-ms 30000}"
BACKENDS="${BENCH_LOAD_BACKENDS:-embedded mariadb}"
OUT="$E2E_DIR/bench-load"
MARIADB_DIR="$OUT/mariadb"
SHARDS=(-40 40-80 80-c0 c0-)

ensure_apt sysbench:sysbench mariadb:mariadb-client python3:python3
SYSBENCH="$(find_exe sysbench)"
CLIENT="$(find_exe mariadb mysql)"
shardgate_bin pgo
CLK_TCK="$(getconf CLK_TCK)"

# The gateway holds a socket per client and per backend connection, sysbench one per client.
need_fds=$((CONNS * 6 + 1024))
raise_fd_limit "$need_fds"
log "open files limit: $(ulimit -n)"

mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.txt
stop_on_exit

cat >"$OUT/vschema.json" <<'EOF'
{
  "keyspaces": {
    "ks": {
      "sharded": true,
      "vindexes": { "hash": { "type": "hash" } },
      "tables": { "t": { "column_vindexes": [{ "column": "id", "name": "hash" }] } }
    }
  }
}
EOF

DDL="create table t (id bigint not null, k int not null default 0, c varchar(120) not null default '', pad varchar(60) not null default '', primary key (id))"

cat >"$OUT/load.lua" <<'EOF'
-- scripts/bench-load.sh: one statement per event; environment:
--   BL_ROWS (ids 1..N exist), BL_MIX (kind=weight,...), BL_RAMP_US (per thread id),
--   BL_FROM / BL_UNTIL (CLOCK_MONOTONIC seconds: the measured window).
local ffi = require("ffi")
ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bl_timespec;
    int clock_gettime(int clk, bl_timespec *ts);
    int usleep(unsigned int usec);
]]
local tsbuf = ffi.new("bl_timespec")
local function now()
    ffi.C.clock_gettime(1, tsbuf) -- CLOCK_MONOTONIC
    return tonumber(tsbuf.tv_sec) + tonumber(tsbuf.tv_nsec) * 1e-9
end

local N = tonumber(os.getenv("BL_ROWS")) or 10000
local RAMP_US = tonumber(os.getenv("BL_RAMP_US")) or 0
local FROM = tonumber(os.getenv("BL_FROM")) or 0
local UNTIL = tonumber(os.getenv("BL_UNTIL")) or 1e18
local C = string.rep("c", 100)
local kinds = {}
local total = 0
for k, w in string.gmatch(os.getenv("BL_MIX") or "", "(%a+)=(%d+)") do
    total = total + tonumber(w)
    table.insert(kinds, {k, total})
end
local BUCKETS_PER_DECADE = 50

-- An error ends the statement, not the event (sysbench would retry a failing event forever):
-- counted per code, the first of each code printed.
local function query(sql, phase)
    local ok, e = pcall(con.query, con, sql)
    if not ok then
        local key = (type(e) == "table" and tostring(e.sql_errno) or "lua") .. "/" .. phase
        local first = errs[key] == nil
        errs[key] = (errs[key] or 0) + 1
        if first then
            local msg = type(e) == "table" and tostring(e.sql_errmsg) or tostring(e)
            io.stdout:write(string.format("BL_FIRST_ERROR %s %s -- %s\n", key, msg, sql:sub(1, 80)))
        end
    end
    return ok
end

function thread_init()
    errs = {}
    hist = {}
    counts = {}
    next_id = 0
    drv = sysbench.sql.driver()
    con = drv:connect()
    ffi.C.usleep(sysbench.tid * RAMP_US)
    query("select count(*) from t", "warmup")
end

function thread_done()
    for k, n in pairs(errs) do io.stdout:write(string.format("BL_ERRORS %s %d\n", k, n)) end
    for k, n in pairs(counts) do io.stdout:write(string.format("BL_COUNT %s %d\n", k, n)) end
    local parts = {}
    for b, n in pairs(hist) do table.insert(parts, b .. ":" .. n) end
    io.stdout:write("BL_HIST " .. table.concat(parts, ",") .. "\n")
    con:disconnect()
end

local function id()
    return sysbench.rand.uniform(1, N)
end

function event()
    local r = sysbench.rand.uniform(1, total)
    local kind
    for _, kw in ipairs(kinds) do
        if r <= kw[2] then kind = kw[1]; break end
    end
    local sql
    if kind == "point" then
        sql = string.format("select c from t where id = %d", id())
    elseif kind == "in" then
        sql = string.format("select id, k from t where id in (%d, %d, %d, %d, %d)",
            id(), id(), id(), id(), id())
    elseif kind == "count" then
        sql = "select count(*) from t"
    elseif kind == "update" then
        sql = string.format("update t set k = k + 1 where id = %d", id())
    elseif kind == "insert" then
        next_id = next_id + 1
        sql = string.format("insert into t (id, k, c, pad) values (%d, %d, '%s', 'bench-load')",
            1000000000 + sysbench.tid * 10000000 + next_id, next_id, C)
    else
        error("unknown statement kind " .. tostring(kind))
    end
    local t0 = now()
    local measured = t0 >= FROM and t0 < UNTIL
    local ok = query(sql, measured and "run" or "outside")
    if measured then
        local us = (now() - t0) * 1e6
        if us < 1 then us = 1 end
        local b = math.floor(math.log10(us) * BUCKETS_PER_DECADE)
        hist[b] = (hist[b] or 0) + 1
        counts[kind] = (counts[kind] or 0) + 1
    end
end
EOF

proc_cpu_s() { # user+sys CPU seconds of a process
    awk -v tck="$CLK_TCK" '{ printf "%.2f", ($14 + $15) / tck }' "/proc/$1/stat" 2>/dev/null || echo 0
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
mono() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }

# start_gateway NAME ARGS...: sets GW_PID, GW_PORT, GW_HTTP
start_gateway() {
    local name="$1"; shift
    GW_PORT="$(free_port 17500)"
    GW_HTTP="$(free_port $((GW_PORT + 1)))"
    local threads=()
    [ -n "${BENCH_LOAD_THREADS:-}" ] && threads=(--threads "$BENCH_LOAD_THREADS")
    # shellcheck disable=SC2086 # GATEWAY_ARGS is a list of options
    SHARDGATE_LOG=warn "$BIN" --listen "127.0.0.1:$GW_PORT" --http "127.0.0.1:$GW_HTTP" \
        --vschema "$OUT/vschema.json" "${threads[@]}" $GATEWAY_ARGS "$@" \
        </dev/null >"$OUT/gateway-$name.log" 2>&1 &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_port "$GW_PORT" "$GW_PID" 30 || { tail -n 20 "$OUT/gateway-$name.log" >&2; die "gateway did not start"; }
    wait_port "$GW_HTTP" "$GW_PID" 30 || die "gateway http port did not open"
    log "gateway ($name) pid $GW_PID on 127.0.0.1:$GW_PORT, http $GW_HTTP"
}

load_rows() { # load_rows PORT: ROWS rows through the gateway, 1,000 per insert
    python3 - "$ROWS" <<'PY' | "$CLIENT" --no-defaults -h127.0.0.1 -P"$1" -uroot ks
import sys
n = int(sys.argv[1])
for lo in range(1, n + 1, 1000):
    hi = min(n, lo + 999)
    vals = ",".join(f"({i},{i % 1000},'{'c' * 100}','init')" for i in range(lo, hi + 1))
    print(f"insert into t (id, k, c, pad) values {vals};")
PY
}

run_one() {
    local name="$1"; shift
    start_gateway "$name" "$@"
    if [ "$name" = embedded ]; then
        "$CLIENT" --no-defaults -h127.0.0.1 -P"$GW_PORT" -uroot ks -e "$DDL"
    fi
    log "$name: loading $ROWS rows"
    load_rows "$GW_PORT"
    local count
    count="$("$CLIENT" --no-defaults -h127.0.0.1 -P"$GW_PORT" -uroot -N ks -e 'select count(*) from t')"
    [ "$count" = "$ROWS" ] || die "$name: loaded $count rows, expected $ROWS"

    local rss0 sampler t0 from until
    rss0="$(rss_kib "$GW_PID")"
    (
        # every second: monotonic time, gateway RSS (KiB), live sessions, CPU seconds
        while kill -0 "$GW_PID" 2>/dev/null; do
            python3 - "$GW_PID" "$GW_HTTP" "$CLK_TCK" <<'PY' || true
import json, sys, time, urllib.request
pid, http, tck = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    s = json.load(urllib.request.urlopen(f"http://127.0.0.1:{http}/debug/vars", timeout=5))["Sessions"]
except Exception:
    s = -1
rss = next((l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")), "0")
st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
print(f"{time.monotonic():.3f} {rss} {s} {(int(st[11]) + int(st[12])) / tck:.2f}", flush=True)
PY
            sleep 1
        done
    ) >"$OUT/samples-$name.txt" &
    sampler=$!
    t0="$(mono)"
    # connections take a moment to open; the window starts once the ramp is surely over
    from="$(python3 -c "print($t0 + $RAMP_S + 5 + $CONNS / 500)")"
    until="$(python3 -c "print($from + $TIME)")"
    local total_s
    total_s="$(python3 -c "import math; print(math.ceil($until - $t0) + 1)")"
    log "$name: sysbench $CONNS connections: ramp-up ${RAMP_S}s, then ${TIME}s measured"
    local rc=0
    BL_ROWS="$ROWS" BL_MIX="$MIX" BL_RAMP_US=$((RAMP_S * 1000000 / CONNS)) BL_FROM="$from" \
        BL_UNTIL="$until" timeout $((total_s + 180)) "$SYSBENCH" "$OUT/load.lua" \
        --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$GW_PORT" --mysql-user=root \
        --mysql-password= --mysql-db=ks --threads="$CONNS" --time="$total_s" \
        --report-interval=10 --mysql-ignore-errors=all --db-ps-mode=disable run \
        >"$OUT/sysbench-$name.log" 2>&1 || rc=$?
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    local rss1
    rss1="$(rss_kib "$GW_PID")"
    if [ $rc -ne 0 ]; then
        tail -n 30 "$OUT/sysbench-$name.log" >&2
        [ $rc -eq 124 ] && log "$name: sysbench did not finish in time: statements hung"
        die "$name: sysbench failed ($rc)"
    fi
    local status=0
    python3 - "$name" "$OUT/sysbench-$name.log" "$OUT/samples-$name.txt" "$CONNS" "$TIME" \
        "$from" "$until" "$rss0" "$rss1" "$GW_HTTP" "$MIX" >"$OUT/summary-$name.txt" <<'PY' || status=$?
import re, sys, urllib.request
name, log, samples, conns, secs, t_from, t_until, rss0, rss1, http, mix = sys.argv[1:]
secs, t_from, t_until = float(secs), float(t_from), float(t_until)
text = open(log).read()
errors = {}
for code, n in re.findall(r"^BL_ERRORS (\S+) (\d+)$", text, re.M):
    errors[code] = errors.get(code, 0) + int(n)
counts = {}
for kind, n in re.findall(r"^BL_COUNT (\S+) (\d+)$", text, re.M):
    counts[kind] = counts.get(kind, 0) + int(n)
hist = {}
for line in re.findall(r"^BL_HIST (.*)$", text, re.M):
    for part in filter(None, line.split(",")):
        b, n = part.split(":")
        hist[int(b)] = hist.get(int(b), 0) + int(n)
firsts = {}
for key, rest in re.findall(r"^BL_FIRST_ERROR (\S+) (.*)$", text, re.M):
    firsts.setdefault(key, rest)  # the first of each code and phase
total = sum(hist.values())
def pct(p):
    acc = 0
    for b in sorted(hist):
        acc += hist[b]
        if acc >= p * total:
            return 10 ** ((b + 1) / 50) / 1000  # the bucket's upper bound, ms
    return float("nan")
rows = [l.split() for l in open(samples) if len(l.split()) == 4]
rows = [(float(t), int(r), int(s), float(c)) for t, r, s, c in rows]
inside = [r for r in rows if t_from <= r[0] <= t_until]
cpu = (inside[-1][3] - inside[0][3]) / (inside[-1][0] - inside[0][0]) if len(inside) > 1 else float("nan")
rss_peak = max((r[1] for r in rows), default=0)
sessions = max((r[2] for r in rows), default=0)
body = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10).read().decode()
gw_err = int(sum(float(v) for v in re.findall(r"^shardgate_errors_total\{[^}]*\} (\S+)$", body, re.M)))
n_err = sum(errors.values()) + gw_err
qps = total / secs if total else 0
print(f"bench-load {name} [{mix}]: {conns} connections (peak {sessions} gateway sessions), "
      f"{secs:.0f}s measured: {qps:,.0f} QPS ({total:,} statements: "
      + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
      + f"), latency p50 {pct(0.5):.2f} ms, p95 {pct(0.95):.2f} ms, p99 {pct(0.99):.2f} ms, "
      f"max {pct(1.0):.0f} ms; errors {n_err} (client {errors or '-'}, gateway "
      f"shardgate_errors_total {gw_err}); gateway RSS {int(rss0) / 1024:.1f} MiB before, peak "
      f"{rss_peak / 1024:.1f} MiB, end {int(rss1) / 1024:.1f} MiB; gateway CPU {cpu * 100:.0f}% "
      f"of one core ({cpu / qps * 1e6 if qps else float('nan'):.0f} us/statement)")
for key, rest in sorted(firsts.items()):
    print(f"  first error {key}: {rest}")
sys.exit(1 if n_err or not total else 0)
PY
    tee -a "$OUT/results.txt" <"$OUT/summary-$name.txt"
    stop_pid "$GW_PID" 10
    return "$status"
}

failed=0
for backend in $BACKENDS; do
    case "$backend" in
        embedded)
            args=()
            for s in "${SHARDS[@]}"; do args+=(--shard "ks/$s=embedded"); done
            run_one embedded "${args[@]}" || failed=1
            ;;
        mariadb)
            ensure_apt mariadbd:mariadb-server
            MPORT="$(MARIADB_PORT_START=17700 "$REPO_ROOT/scripts/mariadb.sh" start "$MARIADB_DIR")"
            MARIADB_STARTED=1
            MPID="$(cat "$MARIADB_DIR/mariadbd.pid")"
            # one backend connection per client session and shard, plus headroom
            "$CLIENT" --no-defaults -h127.0.0.1 -P"$MPORT" -uroot \
                -e "set global max_connections = $((CONNS * 4 + 200))"
            args=()
            for s in "${SHARDS[@]}"; do
                db="bl_ks_${s//-/x}"
                "$CLIENT" --no-defaults -h127.0.0.1 -P"$MPORT" -uroot \
                    -e "drop database if exists $db; create database $db; use $db; $DDL"
                args+=(--shard "ks/$s=mysql://root@127.0.0.1:$MPORT/$db")
            done
            mcpu0="$(proc_cpu_s "$MPID")"
            run_one mariadb "${args[@]}" || failed=1
            log "mariadbd CPU over the whole mariadb run (load and ramp-up included): $(awk -v a="$mcpu0" -v b="$(proc_cpu_s "$MPID")" 'BEGIN{printf "%.1f", b-a}')s"
            "$REPO_ROOT/scripts/mariadb.sh" stop "$MARIADB_DIR" || true
            MARIADB_STARTED=0
            ;;
        *) die "unknown backend $backend (embedded | mariadb)" ;;
    esac
done
log "results: $OUT/results.txt"
exit $failed
