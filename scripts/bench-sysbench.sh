#!/usr/bin/env bash
# sysbench oltp_point_select against one throwaway MariaDB, three ways back to back:
#   direct     sysbench -> MariaDB
#   haproxy    sysbench -> haproxy (TCP mode, nbthread 1: an L4 relay) -> MariaDB
#   shardgate  sysbench -> shardgate --backend mysql://root@127.0.0.1:PORT/sbtest -> MariaDB
# for 1 and 8 threads, prepared (--db-ps-mode=auto) and text (--db-ps-mode=disable). Prints QPS,
# the CPU time per query of the haproxy and shardgate processes (user+sys from /proc/PID/stat,
# delta over the run / queries) and of mariadbd, and the ratios shardgate/haproxy and
# shardgate/direct.
#
# Knobs (environment): BENCH_TIME=10 (seconds per run), BENCH_THREADS="1 8",
# BENCH_MODES="auto disable", BENCH_TABLE_SIZE=10000, SG_BIN=path (skip the cargo build),
# SG_PROFILE=pgo (the build: `pgo` is scripts/build-pgo.sh, else a cargo profile),
# SG_THREADS=1 (shardgate's session threads: one, like haproxy's nbthread 1; on this 2-core
# box sysbench and MariaDB need the other core — `SG_THREADS=` runs the default, one per core),
# SG_ARGS (more shardgate arguments), BENCH_DIRECT=1 (0 leaves out the direct runs: only
# the two proxies are compared, each round takes two runs instead of three),
# BENCH_ROUNDS=5 (rounds of direct, haproxy, shardgate
# back to back per configuration: on a shared host the figures drift from minute to minute, so
# with several rounds each ratio is taken within its round and the median is printed, with
# the range; haproxy runs before shardgate in odd rounds and after it in even ones).
# Results: printed, and kept in .e2e/bench/results.tsv; logs in .e2e/bench/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

BENCH_TIME="${BENCH_TIME:-10}"
BENCH_THREADS="${BENCH_THREADS:-1 8}"
BENCH_MODES="${BENCH_MODES:-auto disable}"
BENCH_TABLE_SIZE="${BENCH_TABLE_SIZE:-10000}"
BENCH_ROUNDS="${BENCH_ROUNDS:-5}"
BENCH_DIRECT="${BENCH_DIRECT:-1}"
OUT="$E2E_DIR/bench"
MARIADB_DIR="$OUT/mariadb"

ensure_system_deps
SYSBENCH="$(find_exe sysbench)"
HAPROXY="$(find_exe haproxy)"
shardgate_bin pgo
CLK_TCK="$(getconf CLK_TCK)"

mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT/results.tsv" "$OUT/haproxy.cfg"
stop_on_exit

MARIADB_STARTED=1
MPORT="$("$REPO_ROOT/scripts/mariadb.sh" start "$MARIADB_DIR")"
MPID="$(cat "$MARIADB_DIR/mariadbd.pid")"
mariadb --no-defaults -h127.0.0.1 -P"$MPORT" -uroot -e 'create database if not exists sbtest'

sb() { # sb PORT ARGS...
    local port="$1"; shift
    "$SYSBENCH" oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
        --mysql-user=root --mysql-password= --mysql-db=sbtest --tables=1 \
        --table-size="$BENCH_TABLE_SIZE" "$@"
}
log "sysbench prepare (1 table, $BENCH_TABLE_SIZE rows)"
sb "$MPORT" prepare >"$OUT/prepare.log" 2>&1 || { cat "$OUT/prepare.log" >&2; die "sysbench prepare failed"; }

# haproxy: plain TCP relay, one thread.
HPORT="$(free_port 17300)"
cat >"$OUT/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mysql
    bind 127.0.0.1:$HPORT
    server mariadb 127.0.0.1:$MPORT
EOF
"$HAPROXY" -db -f "$OUT/haproxy.cfg" </dev/null >"$OUT/haproxy.log" 2>&1 &
HPID=$!
PIDS+=("$HPID")
wait_port "$HPORT" "$HPID" 20 || { cat "$OUT/haproxy.log" >&2; die "haproxy did not start"; }
log "haproxy pid $HPID on 127.0.0.1:$HPORT"

# shardgate in front of the same MariaDB.
GPORT="$(free_port 17310)"
SG_THREADS="${SG_THREADS-1}"
SHARDGATE_LOG="${SHARDGATE_LOG:-warn}" "$BIN" --listen "127.0.0.1:$GPORT" \
    --backend "mysql://root@127.0.0.1:$MPORT/sbtest" ${SG_THREADS:+--threads "$SG_THREADS"} \
    ${SG_ARGS:-} </dev/null >"$OUT/shardgate.log" 2>&1 &
GPID=$!
PIDS+=("$GPID")
if wait_port "$GPORT" "$GPID" 60; then
    log "shardgate pid $GPID on 127.0.0.1:$GPORT (session threads: ${SG_THREADS:-one per core})"
else
    log "shardgate did not start; its column will be empty:"
    tail -n 20 "$OUT/shardgate.log" >&2 || true
    GPID=""
fi

cpu_ticks() { # utime+stime of PID, in clock ticks
    # fields after the ")" of the comm field: state is $1, utime $12, stime $13
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
    echo "${stat##*) }" | awk '{ print $12 + $13 }'
}

failed=0
printf 'threads\tmode\tround\tsetup\tqps\tqueries\tproxy_ticks\tmariadb_ticks\n' >"$OUT/results.tsv"
for threads in $BENCH_THREADS; do
    for mode in $BENCH_MODES; do
      for round in $(seq "$BENCH_ROUNDS"); do
        # The two proxies swap places every other round: a host drifting during a round
        # favours neither.
        order="haproxy shardgate"
        [ $((round % 2)) -eq 0 ] && order="shardgate haproxy"
        [ "$BENCH_DIRECT" = 0 ] || order="direct $order"
        for setup in $order; do
            case "$setup" in
                direct) port="$MPORT"; pid="" ;;
                haproxy) port="$HPORT"; pid="$HPID" ;;
                shardgate) port="$GPORT"; pid="$GPID"
                    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
                        printf '%s\t%s\t%s\t%s\t\t\t\t\n' "$threads" "$mode" "$round" "$setup" >>"$OUT/results.tsv"
                        failed=1
                        continue
                    fi ;;
            esac
            logf="$OUT/run-$setup-t$threads-$mode-r$round.log"
            log "run: $setup, $threads thread(s), --db-ps-mode=$mode, ${BENCH_TIME}s, round $round/$BENCH_ROUNDS"
            p0=0; [ -n "$pid" ] && p0="$(cpu_ticks "$pid")"
            m0="$(cpu_ticks "$MPID")"
            if sb "$port" --threads="$threads" --time="$BENCH_TIME" --db-ps-mode="$mode" \
                    --report-interval=0 run >"$logf" 2>&1; then
                p1=0; [ -n "$pid" ] && p1="$(cpu_ticks "$pid")"
                m1="$(cpu_ticks "$MPID")"
                # "    queries:      123456 (12345.67 per sec.)"
                queries="$(awk '/^ *queries:/ { print $2 }' "$logf")"
                qps="$(awk '/^ *queries:/ { gsub(/\(/, "", $3); print $3 }' "$logf")"
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$threads" "$mode" "$round" "$setup" \
                    "$qps" "$queries" "$((p1 - p0))" "$((m1 - m0))" >>"$OUT/results.tsv"
            else
                log "sysbench failed ($setup, $threads threads, $mode):"
                tail -n 15 "$logf" >&2 || true
                printf '%s\t%s\t%s\t%s\t\t\t\t\n' "$threads" "$mode" "$round" "$setup" >>"$OUT/results.tsv"
                failed=1
            fi
        done
      done
    done
done

python3 - "$OUT/results.tsv" "$CLK_TCK" <<'EOF'
import csv, random, statistics, sys
path, tck = sys.argv[1], int(sys.argv[2])
rows = list(csv.DictReader(open(path), delimiter="\t"))
res = {}
for r in rows:
    res[(r["threads"], r["mode"], r["round"], r["setup"])] = r

def qps(r):
    return float(r["qps"]) if r and r["qps"] else None

def us_per_q(r, key):
    if not r or not r["queries"] or int(r["queries"]) == 0:
        return None
    return int(r[key]) / tck / int(r["queries"]) * 1e6

def ratio(a, b):
    return a / b if a is not None and b else None

def med(values, fmt):
    """The median over rounds, with the range when there are several."""
    v = [x for x in values if x is not None]
    if not v:
        return "n/a"
    m = format(statistics.median(v), fmt)
    return m if len(v) == 1 else f"{m} ({format(min(v), fmt)}-{format(max(v), fmt)})"

rounds = len({k[2] for k in res})
print()
print(f"sysbench oltp_point_select, same MariaDB, runs back to back; CPU from /proc (CLK_TCK={tck})")
if rounds > 1:
    print(f"median of {rounds} rounds (range); each ratio is taken within its round")
hdr = ["threads", "ps-mode", "direct qps", "haproxy qps", "shardgate qps", "sg/haproxy",
       "sg/direct", "haproxy us/q", "shardgate us/q", "sg/haproxy cpu", "mariadbd us/q"]
lines = []
per_round = {}  # (threads, mode) -> the table's columns, one value per round
for (t, m) in sorted({(k[0], k[1]) for k in res}, key=lambda k: (int(k[0]), k[1])):
    cols = {c: [] for c in hdr[2:]}
    for rnd in sorted({k[2] for k in res if k[:2] == (t, m)}):
        d, h, g = (res.get((t, m, rnd, s)) for s in ("direct", "haproxy", "shardgate"))
        hc, gc = us_per_q(h, "proxy_ticks"), us_per_q(g, "proxy_ticks")
        for c, v in zip(hdr[2:], [qps(d), qps(h), qps(g), ratio(qps(g), qps(h)),
                                   ratio(qps(g), qps(d)), hc, gc, ratio(gc, hc),
                                   us_per_q(d, "mariadb_ticks")]):
            cols[c].append(v)
    per_round[(t, m)] = cols
    fmts = [".0f", ".0f", ".0f", ".2f", ".2f", ".1f", ".1f", ".2f", ".1f"]
    lines.append([t, "prepared" if m == "auto" else "text" if m == "disable" else m]
                 + [med(cols[c], fm) for c, fm in zip(hdr[2:], fmts)])
w = [max(len(str(x)) for x in col) for col in zip(hdr, *lines)]
print("  ".join(h.rjust(n) for h, n in zip(hdr, w)))
for l in lines:
    print("  ".join(str(x).rjust(n) for x, n in zip(l, w)))
print()
print("targets (8 threads, prepared): shardgate qps >= haproxy qps; shardgate us/q <= haproxy us/q")

def median_interval(values, rng, draws=2000, level=0.90):
    """A bootstrap interval of the median over rounds: how far the host's drift alone moves it."""
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    cut = int(draws * (1 - level) / 2)
    return meds[cut], meds[draws - 1 - cut]

def verdict(values, want_at_least_one):
    v = [x for x in values if x is not None]
    if len(v) < 3:
        return "n/a (fewer than 3 rounds)"
    lo, hi = median_interval(v, random.Random(1))
    m = statistics.median(v)
    if (lo >= 1) if want_at_least_one else (hi <= 1):
        word = "met"
    elif (hi < 1) if want_at_least_one else (lo > 1):
        word = "missed"
    else:
        word = "not resolved: 1.00 lies within the host's noise"
    return f"median {m:.2f}, 90% bootstrap interval {lo:.2f}-{hi:.2f}: {word}"

target = per_round.get(("8", "auto"))
if target:
    print(f"  qps sg/haproxy: {verdict(target['sg/haproxy'], True)}")
    print(f"  cpu sg/haproxy: {verdict(target['sg/haproxy cpu'], False)}")
EOF
log "results: $OUT/results.tsv; logs: $OUT/"
exit $failed
