"""The simulated engine behind the embedded default must answer like MariaDB.

e2e/sql/engine_vs_mariadb.sql runs statement by statement on the embedded default gateway and on
MariaDB (in a database of its own, `e2e_diff`); also through the backend gateway (database
`test` of the same MariaDB), which checks the pass-through path. Values are compared as the text on the wire
(PyMySQL without conversions). All differences are collected and reported together.

Other tests create tables named `e2e_*` on the same servers; SHOW TABLES ignores those, and the
tables the embedded default ships with (its `lookup` keyspace holds the `customer_seq` sequence).
"""

import os
import re

# Tables the embedded default creates at start.
PRESET_TABLES = {"customer_seq"}

import pymysql
import pytest
from pymysql.constants import CLIENT

SQL_FILE = os.path.join(os.path.dirname(__file__), "sql", "engine_vs_mariadb.sql")
DIFF_DB = "e2e_diff"


def load_statements(path=SQL_FILE):
    """(line number, statement) pairs: statements end with ';' at the end of a line."""
    stmts, buf, start = [], [], None
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            s = line.strip()
            if not buf and (not s or s.startswith("--")):
                continue
            if start is None:
                start = no
            buf.append(line.rstrip("\n"))
            if s.endswith(";"):
                text = "\n".join(buf).strip()
                stmts.append((start, text[:-1].strip()))
                buf, start = [], None
    assert not buf, f"unterminated statement at line {start}"
    return stmts


def _sort_key(row):
    return tuple((v is None, "" if v is None else (v.hex() if isinstance(v, bytes) else v)) for v in row)


NEWDECIMAL = 246


def outcome(cur, sql):
    """The comparable outcome of one statement: ('error', code) / ('ok', affected, insert id) /
    ('rows', labels, rows, types). `types` are the column type codes, with the scale of
    DECIMAL columns (what decides how clients convert values); finer column-definition details
    (flags, display lengths) differ between MySQL and MariaDB themselves and are not compared."""
    try:
        cur.execute(sql)
    except pymysql.err.MySQLError as e:
        code = e.args[0] if e.args else None
        return ("error", code)
    if cur.description is None:
        return ("ok", cur.rowcount, cur.lastrowid)
    labels = tuple(d[0] for d in cur.description)
    types = tuple(
        (f.type_code, f.scale) if f.type_code == NEWDECIMAL else (f.type_code,)
        for f in cur._result.fields
    )
    rows = [tuple(r) for r in cur.fetchall()]
    if re.match(r"(?is)^\s*show\s+tables\b", sql):
        rows = [r for r in rows if not str(r[0]).startswith("e2e_") and str(r[0]) not in PRESET_TABLES]
        labels = ("Tables_in_*",)  # the name includes the database
    if not re.search(r"(?i)\border\s+by\b", sql):
        rows.sort(key=_sort_key)
    return ("rows", labels, rows, types)


def run_all(target, db):
    cnx = target.pymysql(conv={}, database=db, autocommit=True)
    try:
        with cnx.cursor() as cur:
            return [outcome(cur, sql) for _, sql in load_statements()]
    finally:
        cnx.close()


@pytest.fixture(scope="module")
def mariadb_results(mariadb):
    admin = mariadb.pymysql()
    try:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {DIFF_DB}")
            cur.execute(f"create database {DIFF_DB}")
    finally:
        admin.close()
    return run_all(mariadb, DIFF_DB)


_gateway_results = {}


@pytest.fixture
def diff_results(mariadb_results, gateway):
    """MariaDB's outcomes and the gateway's: the embedded default (the simulated engine) and,
    as a check of the pass-through path, the backend gateway in front of MariaDB."""
    if gateway.name not in _gateway_results:
        _gateway_results[gateway.name] = run_all(gateway, gateway.db)
    return mariadb_results, _gateway_results[gateway.name]


def _fmt(o):
    if o[0] == "rows":
        return f"labels {list(o[1])}, rows {o[2]}"
    if o[0] == "ok":
        return f"OK affected={o[1]} insert_id={o[2]}"
    return f"ERROR {o[1]}"


def _report(diffs):
    return f"{len(diffs)} statement(s) differ (want = MariaDB, got = the gateway):\n" + "\n".join(diffs)


def test_sql_file_parses():
    stmts = load_statements()
    assert len(stmts) > 50
    assert all(";" not in s for _, s in stmts)


def test_engine_matches_mariadb(diff_results):
    """Rows, affected rows, insert ids and error codes (not the column labels)."""
    want, got = diff_results
    diffs = []
    for (line, sql), w, g in zip(load_statements(), want, got):
        if w[0] == "rows" and g[0] == "rows":
            if w[2] != g[2]:
                diffs.append(f"line {line}: {sql}\n    want rows {w[2]}\n    got  rows {g[2]}")
        elif w != g:
            diffs.append(f"line {line}: {sql}\n    want {_fmt(w)}\n    got  {_fmt(g)}")
    assert not diffs, _report(diffs)


def test_engine_column_labels_match_mariadb(diff_results):
    """The column names clients see (cursor.description) are MariaDB's."""
    want, got = diff_results
    diffs = []
    for (line, sql), w, g in zip(load_statements(), want, got):
        if w[0] == "rows" and g[0] == "rows" and w[1] != g[1]:
            diffs.append(f"line {line}: {sql}\n    want {list(w[1])}\n    got  {list(g[1])}")
    assert not diffs, _report(diffs)


def test_engine_column_types_match_mariadb(diff_results):
    """The column types clients convert values by (and the scale of DECIMAL columns)."""
    want, got = diff_results
    diffs = []
    for (line, sql), w, g in zip(load_statements(), want, got):
        if w[0] == "rows" and g[0] == "rows" and w[3] != g[3]:
            diffs.append(
                f"line {line}: {sql}\n    columns {list(w[1])}\n    want {list(w[3])}\n    got  {list(g[3])}"
            )
    assert not diffs, _report(diffs)


def test_mariadb_side_is_sane(mariadb_results):
    """The expected side itself: the SQL file does what it says on MariaDB."""
    want = mariadb_results
    errors = [o[1] for o in want if o[0] == "error"]
    assert errors == [1062, 1062, 1062, 1062, 1146, 1146, 1054, 1054, 1054, 1050, 1064, 1064, 1051, 1146], errors
