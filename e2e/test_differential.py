"""The differential SQL suite (scenarios/sql/*.slt) on real servers: every setup must give the
answers the records state, so all of them agree.

  b2  shardgate over 2 embedded shards (ks/-80, ks/80-, seq/0)       labels sharded, shards2, embedded
  b4  shardgate over 4 embedded shards (ks/-40 … ks/c0-, seq/0)      labels sharded, shards4, embedded
  c   shardgate over 2 MariaDB shards: databases diff_c_ks_x80,     labels sharded, shards2, mariadb
      diff_c_ks_80x and diff_c_seq of the throwaway MariaDB
  d   MariaDB itself, databases `ks` and `seq`                        labels unsharded, mariadb

Setup (a), one simulated engine without a gateway, is the Rust test sim/engine/tests/slt.rs
(`cargo test -p shardgate-engine --test slt`, part of `make unit`).

Each gateway is started here, fresh, on a free port, with scenarios/sql/vschema.json; the
binary is $SG_BIN or target/release/shardgate (scripts/e2e.sh builds it). Logs go to
.e2e/run/differential-<setup>.log. One setup alone: scripts/e2e.sh -k 'differential and b4'.
"""

import os

import pytest

import slt
from gateway import Gateway, GatewayError, binary_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SQL_DIR = os.path.join(REPO, "scenarios", "sql")
VSCHEMA = os.path.join(SQL_DIR, "vschema.json")

SETUPS = {
    "b2": {"labels": {"sharded", "shards2", "embedded"}, "shards": ["-80", "80-"], "mariadb": False},
    "b4": {
        "labels": {"sharded", "shards4", "embedded"},
        "shards": ["-40", "40-80", "80-c0", "c0-"],
        "mariadb": False,
    },
    "c": {"labels": {"sharded", "shards2", "mariadb"}, "shards": ["-80", "80-"], "mariadb": True},
    "d": {"labels": {"unsharded", "mariadb"}},
}


def suite_files():
    return sorted(
        os.path.join(SQL_DIR, f) for f in os.listdir(SQL_DIR) if f.endswith(".slt")
    )


def binary():
    """The gateway binary, or skip/fail as SG_TARGETS and SG_REQUIRE_TARGETS ask."""
    targets = os.environ.get("SG_TARGETS")
    if targets is not None and not ({"backend", "embedded"} & set(targets.split(","))):
        pytest.skip(f"SG_TARGETS={targets}: no gateway")
    path = binary_path()
    if not os.access(path, os.X_OK):
        required = os.environ.get("SG_REQUIRE_TARGETS", "")
        if "backend" in required or "embedded" in required:
            pytest.fail(f"no shardgate binary at {path}")
        pytest.skip(f"no shardgate binary at {path} (build it or set SG_BIN)")
    return path


def start_gateway(name, shard_urls):
    """A gateway over `shard_urls` with the suite's vschema; log .e2e/run/differential-<name>.log
    (scripts/e2e.sh stops gateways whose pid files an interrupted run left)."""
    binary()
    gw = Gateway(f"differential-{name}", shard_urls, vschema=VSCHEMA)
    try:
        return gw.start()
    except GatewayError as e:
        pytest.fail(str(e))


def reset_databases(mariadb, names):
    admin = mariadb.pymysql()
    try:
        with admin.cursor() as cur:
            for db in names:
                cur.execute(f"drop database if exists `{db}`")
                cur.execute(f"create database `{db}`")
    finally:
        admin.close()


@pytest.fixture
def setup_conn(request, mariadb):
    """A connection to the setup under test (fresh state), and its labels."""
    name = request.param
    spec = SETUPS[name]
    gw = None
    if name == "d":
        reset_databases(mariadb, ["ks", "seq"])
        port = mariadb.port
    else:
        if spec["mariadb"]:
            dbs = {"-80": "diff_c_ks_x80", "80-": "diff_c_ks_80x"}
            reset_databases(mariadb, list(dbs.values()) + ["diff_c_seq"])
            base = f"mysql://root@127.0.0.1:{mariadb.port}/"
            urls = [(f"ks/{s}", base + dbs[s]) for s in spec["shards"]]
            urls.append(("seq/0", base + "diff_c_seq"))
        else:
            urls = [(f"ks/{s}", "embedded") for s in spec["shards"]] + [("seq/0", "embedded")]
        gw = start_gateway(name, urls)
        port = gw.port
    conn = slt.connect(port, "ks")
    try:
        yield conn, spec["labels"], gw
    finally:
        conn.close()
        if gw is not None:
            gw.stop()


def test_suite_parses():
    files = suite_files()
    assert files, f"no .slt files in {SQL_DIR}"
    total = sum(len(slt.parse(f)) for f in files)
    assert total >= 150, f"only {total} records"


@pytest.mark.parametrize("setup_conn", ["d", "b2", "b4", "c"], indirect=True)
def test_differential(setup_conn, request):
    conn, labels, gw = setup_conn
    name = request.node.callspec.params["setup_conn"]
    failures, lines = [], []
    for path in suite_files():
        records = slt.parse(path)
        results = slt.run(conn, records, labels)
        s = slt.summary(results)
        rel = os.path.relpath(path, REPO)
        lines.append(
            f"differential {name}: {rel}: {len(records)} records, {s['run']} run, {s['passed']} passed, "
            f"{s['xfailed']} known bugs (xfail), {s['failed']} failed, {s['skipped']} skipped"
        )
        failures += [slt.format_failure(r) for r in results if r.status in ("fail", "xpass")]
    summary_lines = getattr(request.config, "_sg_summary_lines", None)
    if summary_lines is not None:
        summary_lines.extend(lines)
    if gw is not None and not gw.alive():
        failures.append(f"the {name} gateway died during the run; log {gw.log_path}:\n{gw.log_tail()}")
    assert not failures, "\n".join(lines) + "\n" + f"{len(failures)} failure(s) on {name}:\n" + "\n".join(failures)
