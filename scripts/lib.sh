# Shared helpers for the shell scripts under scripts/. Source it, don't run it:
#   . "$(dirname "$0")/lib.sh"
# Every helper is idempotent: it installs or starts something only when it is missing.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E_DIR="${E2E_DIR:-$REPO_ROOT/.e2e}"
PYTHON_VENV="$E2E_DIR/venv"
REQUIREMENTS="$REPO_ROOT/requirements-e2e.txt"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# First executable found among the names, looked up in PATH and in the sbin directories
# (non-root PATHs often lack /usr/sbin, where Debian puts mariadbd and haproxy).
find_exe() {
    local name dir
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
        for dir in /usr/sbin /usr/local/sbin /sbin; do
            if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
        done
    done
    return 1
}

# ensure_apt EXE:PACKAGE ...: apt-get install the packages whose executable is missing.
# apt-get update runs once, and only when something has to be installed.
ensure_apt() {
    local spec exe pkg missing=()
    for spec in "$@"; do
        exe="${spec%%:*}"
        pkg="${spec#*:}"
        if ! find_exe "$exe" >/dev/null; then missing+=("$pkg"); fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_install "${missing[@]}"
}

# apt_install PACKAGE ...: apt-get update, then install the packages (duplicates named once).
apt_install() {
    local uniq=() p q seen
    for p in "$@"; do
        seen=0
        for q in "${uniq[@]:-}"; do [ "$p" = "$q" ] && seen=1; done
        [ $seen -eq 0 ] && uniq+=("$p")
    done
    command -v apt-get >/dev/null 2>&1 || die "missing ${uniq[*]} and no apt-get to install them"
    log "installing with apt-get: ${uniq[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${uniq[@]}" >&2
}

# Everything the end-to-end tests and the sysbench comparison need from Debian.
ensure_system_deps() {
    ensure_apt \
        mariadbd:mariadb-server \
        mariadb-install-db:mariadb-server \
        mariadb:mariadb-client \
        mariadb-admin:mariadb-client \
        sysbench:sysbench \
        haproxy:haproxy \
        python3:python3
    # libmariadb's prepared statements (e2e/test_libmariadb.py): a Perl module, no executable.
    perl -MDBD::MariaDB -e 1 2>/dev/null || apt_install libdbd-mariadb-perl
}

# Prints the python interpreter that has the e2e clients (PyMySQL, mysql-connector-python,
# pytest). The system python3 is used as is when it already has all three; otherwise a virtualenv
# under .e2e/venv gets the pinned versions of requirements-e2e.txt (Debian's python3 is
# "externally managed", so pip must not install into it).
PY_CHECK='import pymysql, mysql.connector, pytest'
ensure_python() {
    if [ -x "$PYTHON_VENV/bin/python" ] && "$PYTHON_VENV/bin/python" -c "$PY_CHECK" 2>/dev/null; then
        echo "$PYTHON_VENV/bin/python"; return 0
    fi
    if [ -z "${SG_FORCE_VENV:-}" ] && python3 -c "$PY_CHECK" 2>/dev/null; then
        command -v python3; return 0
    fi
    # Debian's own interpreter when there is one (not whatever python3 comes first in PATH).
    local base=python3
    [ -x /usr/bin/python3 ] && base=/usr/bin/python3
    mkdir -p "$E2E_DIR"
    rm -rf "$PYTHON_VENV"
    log "creating $PYTHON_VENV with $base ($("$base" --version 2>&1))"
    if ! "$base" -m venv "$PYTHON_VENV" >&2; then
        # Debian ships venv/ensurepip separately
        log "python3 -m venv failed; installing python3-venv"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
        rm -rf "$PYTHON_VENV"
        "$base" -m venv "$PYTHON_VENV" >&2
    fi
    log "pip install -r $(basename "$REQUIREMENTS")"
    "$PYTHON_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
    "$PYTHON_VENV/bin/python" -c "$PY_CHECK" || die "python clients still missing after pip install"
    echo "$PYTHON_VENV/bin/python"
}

# Node's mysql2 client for e2e/test_mysql2.py: Debian's nodejs and npm when node is missing,
# then `npm ci` of e2e/node/package-lock.json (exact versions), redone only when the lock changed.
ensure_node_clients() {
    ensure_apt node:nodejs npm:npm
    local dir="$REPO_ROOT/e2e/node" stamp="$REPO_ROOT/e2e/node/node_modules/.shardgate-lock"
    if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then return 0; fi
    log "npm ci in e2e/node (node $(node --version))"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in e2e/node"
    cp "$dir/package-lock.json" "$stamp"
}

# JDBC for e2e/test_jdbc.py: a JDK — a JRE alone cannot run e2e/java/JdbcSteps.java as a
# source file, hence the check for javac — and Debian's MariaDB Connector/J.
MARIADB_JDBC_JAR=/usr/share/java/mariadb-java-client.jar
ensure_java_clients() {
    ensure_apt javac:default-jdk-headless
    [ -f "$MARIADB_JDBC_JAR" ] || apt_install libmariadb-java
}

# Makes cargo reachable: PATH, then ~/.cargo/bin, then (only when neither has it) a rustup
# install of the stable toolchain plus the C linker Rust needs.
ensure_rust() {
    if command -v cargo >/dev/null 2>&1; then return 0; fi
    if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; return 0; fi
    log "cargo not found: installing the Rust toolchain with rustup"
    ensure_apt cc:build-essential curl:curl
    [ -e /etc/ssl/certs/ca-certificates.crt ] || ensure_apt update-ca-certificates:ca-certificates
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --profile minimal --default-toolchain stable >&2
    export PATH="$HOME/.cargo/bin:$PATH"
}

port_is_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# free_port START: the first port >= START (and never 3306) nobody listens on.
free_port() {
    local p="$1"
    while [ "$p" -lt 65000 ]; do
        if [ "$p" -ne 3306 ] && port_is_free "$p"; then echo "$p"; return 0; fi
        p=$((p + 1))
    done
    die "no free port from $1"
}

# wait_port PORT PID SECONDS: wait until 127.0.0.1:PORT accepts connections; fail early when
# PID (if not empty) has exited.
wait_port() {
    local port="$1" pid="$2" secs="$3" i=0
    while [ "$i" -lt $((secs * 10)) ]; do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.5).close()" 2>/dev/null; then
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# stop_pid PID [SECONDS]: TERM, wait, then KILL. Only ever called with pids we started.
stop_pid() {
    local pid="$1" secs="${2:-20}" i=0
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt $((secs * 10)) ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop after ${secs}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Sets BIN to the gateway binary: $SG_BIN when given, else a build of $SG_PROFILE or $1 (built
# now; default `release`): a cargo profile, or `pgo`, the profile-guided `production` build of
# scripts/build-pgo.sh. Benchmarks pass `pgo`, what deployments run (whole-program LTO laid
# out by a measured profile: slower to build, fewer instructions per query).
shardgate_bin() {
    local profile="${SG_PROFILE:-${1:-release}}"
    if [ -n "${SG_BIN:-}" ]; then
        BIN="$SG_BIN"
    elif [ "$profile" = pgo ]; then
        BIN="$("$REPO_ROOT/scripts/build-pgo.sh")"
    else
        ensure_rust
        log "cargo build --profile $profile -p shardgate-runtime --bin shardgate"
        cargo build --profile "$profile" -p shardgate-runtime --bin shardgate >&2
        BIN="$REPO_ROOT/target/$profile/shardgate"
    fi
    [ -x "$BIN" ] || die "no shardgate binary at $BIN"
}

# sysbench_vschema N: prints a vschema of keyspace `sbtest` with sysbench's tables sbtest1..N
# sharded by `hash` on id.
sysbench_vschema() {
    python3 - "$1" <<'PY'
import json, sys
n = int(sys.argv[1])
tables = {f"sbtest{i}": {"column_vindexes": [{"column": "id", "name": "hash"}]}
          for i in range(1, n + 1)}
print(json.dumps({"keyspaces": {"sbtest": {
    "sharded": True, "vindexes": {"hash": {"type": "hash"}}, "tables": tables}}}, indent=2))
PY
}

# raise_fd_limit N: lifts the open files limit to N (or to the hard limit when N is above it).
raise_fd_limit() {
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$1" ]; then
        ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
    fi
}

# stop_on_exit: on exit (or INT/TERM) stop every pid in PIDS, and the MariaDB of MARIADB_DIR
# while MARIADB_STARTED=1; the script's exit code is kept.
PIDS=()
MARIADB_STARTED=0
_stop_started() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]:-}"; do stop_pid "$pid" 10; done
    if [ "$MARIADB_STARTED" = 1 ]; then "$REPO_ROOT/scripts/mariadb.sh" stop "$MARIADB_DIR" || true; fi
    exit "$rc"
}
stop_on_exit() {
    trap _stop_started EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
