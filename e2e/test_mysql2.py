"""Node.js's mysql2 client (e2e/node, installed by scripts/lib.sh with `npm ci`): text and
prepared statements, multi-statements and errors, and what mysql2 reads from an OK packet — it
takes an OK's info as length-encoded only from a server that offers CLIENT_SESSION_TRACK, and
derives `changedRows` from that info."""

import os
import shutil

import pytest
from step_client import run_step_client

NODE_DIR = os.path.join(os.path.dirname(__file__), "node")
SCRIPT = os.path.join(NODE_DIR, "mysql2_steps.js")
TABLE = "e2e_mysql2"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None
    or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "mysql2")),
    reason="node or mysql2 missing (scripts/lib.sh ensure_node_clients installs them)",
)


def run_steps(target, steps):
    return run_step_client(["node", SCRIPT, str(target.port), target.db or ""], steps)


def ok(affected, info="", changed=0, insert_id=0):
    return {"ok": {"affected": affected, "insertId": insert_id, "info": info, "changed": changed}}


def test_mysql2_reads_what_mariadb_answers(target):
    q = lambda sql: ["query", sql]  # noqa: E731
    x = lambda sql, *params: ["execute", sql, list(params)]  # noqa: E731
    results = run_steps(
        target,
        [
            q(f"drop table if exists {TABLE}"),
            q(f"create table {TABLE} (id int primary key, a varchar(8), d decimal(6,2))"),
            q(f"insert into {TABLE} values (1, 'x', 1.50), (2, 'y', -3.25), (3, NULL, 0)"),
            q(f"insert into {TABLE} values (4, 'w', 4)"),
            q(f"update {TABLE} set a = 'y' where id <= 2"),
            x(f"select * from {TABLE} where id >= ? order by id", 2),
            x(f"insert into {TABLE} values (?, ?, ?), (?, ?, ?)", 5, "p", "5.5", 6, "q", "6"),
            x("delete s from t as s where s version convert unsigned limit ?", 1),
            q("select 'ok' as one"),
            x(f"select a from {TABLE} where nope = ?", 1),
            q(f"select count(*) as n from {TABLE}; select * from e2e_mysql2_missing"),
            q(f"select count(*) as n from {TABLE}; delete from {TABLE} where id > 4"),
            q(f"drop table {TABLE}"),
        ],
    )
    LONG, VAR_STRING, NEWDECIMAL, LONGLONG = 3, 253, 246, 8
    assert results[2:] == [
        ok(3, "Records: 3  Duplicates: 0  Warnings: 0"),
        ok(1),
        # mysql2 asks for CLIENT_FOUND_ROWS: affected counts matched rows, changedRows the info.
        ok(2, "Rows matched: 2  Changed: 1  Warnings: 0", changed=1),
        {
            "rows": [[2, "y", "-3.25"], [3, None, "0.00"], [4, "w", "4.00"]],
            "fields": [["id", LONG], ["a", VAR_STRING], ["d", NEWDECIMAL]],
        },
        ok(2, "Records: 2  Duplicates: 0  Warnings: 0"),
        {"error": [1064, "42000"]},
        {"rows": [["ok"]], "fields": [["one", VAR_STRING]]},
        {"error": [1054, "42S22"]},
        {"error": [1146, "42S02"]},
        [{"rows": [["6"]], "fields": [["n", LONGLONG]]}, ok(2)],
        ok(0),
    ], results


def test_affected_rows_follow_each_clients_found_rows_flag(target):
    """mysql2 asks for CLIENT_FOUND_ROWS (UPDATE reports matched rows), PyMySQL does not
    (changed rows). The flag is fixed when a shard connection is opened, so a pooled connection
    opened for one kind of client must not serve the other: alternate them over the same table."""
    table = "e2e_found_rows"
    conn = target.pymysql()
    cur = conn.cursor()
    cur.execute(f"drop table if exists {table}")
    cur.execute(f"create table {table} (id int primary key, v int)")
    cur.execute(f"insert into {table} values (1, 1), (2, 2)")
    conn.close()
    update = ["query", f"update {table} set v = 1"]
    for _ in range(2):
        # Two rows match, at most one changes (none after the first update).
        [found] = run_steps(target, [update])
        assert found["ok"]["affected"] == 2, found
        conn = target.pymysql()
        cur = conn.cursor()
        assert cur.execute(f"update {table} set v = 1") == 0
        conn.close()
    # A session with settings of its own, then one without: the second gets the first's
    # connection reset (COM_RESET_CONNECTION), which keeps the connection's capabilities.
    results = run_steps(target, [["query", "set session sql_mode = 'ANSI_QUOTES'"], update])
    assert results[1]["ok"]["affected"] == 2, results
    [found] = run_steps(target, [update])
    assert found["ok"]["affected"] == 2, found
    conn = target.pymysql()
    conn.cursor().execute(f"drop table {table}")
    conn.close()
