"""A sqllogictest-style runner for scenarios/sql/*.slt over any MySQL-protocol server.

Record format (the subset of sqllogictest the differential suite uses; the Rust runner of setup
(a), sim/engine/tests/slt.rs, reads the same format):

    # a comment                      (lines starting with '#' outside a record)
    onlyif LABEL / skipif LABEL      (optional, before a record: run it only on / not on setups
                                      carrying LABEL; labels: sharded, unsharded, shards2,
                                      shards4, embedded, engine, mariadb)
    xfail LABEL                      (optional, before a record: a known bug; on setups carrying
                                      LABEL the record must fail, and passing is reported as a
                                      failure too, so the marker goes once the bug is fixed)
    statement ok                     the statement succeeds
    statement count N                ... and reports N affected rows
    statement error CODE             it fails with that MySQL error code (any statement)
    query TYPES [rowsort|nosort]     a result set: TYPES has one letter per column
                                      (I integer, R decimal/float, T anything);
    SQL (one or more lines)
    ----                             query records only: the expected rows follow, one line
    row values separated by ' '      per row, NULL as NULL, the empty string as (empty)
    (a blank line ends a record)

`rowsort` sorts the rendered rows (as strings) before comparing; `nosort` (the default) keeps
the server's order and is only for queries whose ORDER BY fixes it. Values are compared as the
text MySQL sends on the wire (PyMySQL without conversions).

CLI (for authoring; the differential test is e2e/test_differential.py):

    python e2e/slt.py --port P [--db ks] [--labels unsharded,mariadb] FILE...
    python e2e/slt.py --port P --labels ... --complete FILE   rewrite FILE's expectations with
                                                              what the server answered
"""

import argparse
import re
import sys
from dataclasses import dataclass, field
from typing import List, Optional

import pymysql


class SltError(Exception):
    pass


@dataclass
class Record:
    path: str
    line: int  # line of the record's header
    kind: str  # "statement" | "query"
    sql: str
    onlyif: List[str] = field(default_factory=list)
    skipif: List[str] = field(default_factory=list)
    xfail: List[str] = field(default_factory=list)
    # statement: "ok" | "count" | "error"; query: "rows" (or "error" via statement error)
    expect: str = "ok"
    count: Optional[int] = None
    error: Optional[int] = None
    types: str = ""
    sort: str = "nosort"
    rows: List[str] = field(default_factory=list)
    # where the expected rows are in the file (for --complete): [first, end) line indexes
    rows_span: Optional[tuple] = None

    def applies(self, labels) -> bool:
        if any(l not in labels for l in self.onlyif):
            return False
        if any(l in labels for l in self.skipif):
            return False
        return True

    def expected_to_fail(self, labels) -> bool:
        return any(l in labels for l in self.xfail)

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def parse(path: str) -> List[Record]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    records = []
    i, n = 0, len(lines)
    onlyif, skipif, xfail = [], [], []
    while i < n:
        s = lines[i].strip()
        if not s or s.startswith("#"):
            i += 1
            continue
        words = s.split()
        if words[0] in ("onlyif", "skipif", "xfail"):
            if len(words) != 2:
                raise SltError(f"{path}:{i + 1}: {words[0]} takes one label")
            {"onlyif": onlyif, "skipif": skipif, "xfail": xfail}[words[0]].append(words[1])
            i += 1
            continue
        header_line = i + 1
        if words[0] == "statement":
            rec = Record(path, header_line, "statement", "", onlyif, skipif, xfail)
            if words[1:] == ["ok"]:
                rec.expect = "ok"
            elif len(words) == 3 and words[1] == "count":
                rec.expect, rec.count = "count", int(words[2])
            elif len(words) == 3 and words[1] == "error":
                rec.expect, rec.error = "error", int(words[2])
            else:
                raise SltError(f"{path}:{header_line}: bad statement header: {s}")
        elif words[0] == "query":
            if len(words) < 2 or len(words) > 3 or not re.fullmatch(r"[ITR]+", words[1]):
                raise SltError(f"{path}:{header_line}: bad query header: {s}")
            rec = Record(path, header_line, "query", "", onlyif, skipif, xfail, expect="rows")
            rec.types = words[1]
            if len(words) == 3:
                if words[2] not in ("rowsort", "nosort"):
                    raise SltError(f"{path}:{header_line}: unknown sort mode {words[2]}")
                rec.sort = words[2]
        else:
            raise SltError(f"{path}:{header_line}: expected a record, got: {s}")
        onlyif, skipif, xfail = [], [], []
        i += 1
        sql = []
        while i < n and lines[i].strip() and lines[i].strip() != "----":
            sql.append(lines[i].rstrip())
            i += 1
        if not sql:
            raise SltError(f"{path}:{header_line}: record without SQL")
        rec.sql = "\n".join(sql)
        if i < n and lines[i].strip() == "----":
            if rec.kind != "query":
                raise SltError(f"{path}:{header_line}: ---- after a statement")
            i += 1
            start = i
            while i < n and lines[i].strip():
                rec.rows.append(" ".join(lines[i].split()))
                i += 1
            rec.rows_span = (start, i)
        elif rec.kind == "query":
            raise SltError(f"{path}:{header_line}: query without ----")
        records.append(rec)
    if onlyif or skipif or xfail:
        raise SltError(f"{path}: onlyif/skipif/xfail at the end of the file")
    return records


def render(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (bytes, bytearray)):
        v = v.decode("utf-8", errors="backslashreplace")
    v = str(v)
    return "(empty)" if v == "" else v


_INT = re.compile(r"-?\d+")
_NUM = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def check_types(types: str, rows) -> Optional[str]:
    for r in rows:
        if len(r) != len(types):
            return f"{len(r)} column(s), the record says {len(types)} ({types})"
        for t, v in zip(types, r):
            if v == "NULL":
                continue
            if t == "I" and not _INT.fullmatch(v):
                return f"column type I but value {v!r}"
            if t == "R" and not _NUM.fullmatch(v):
                return f"column type R but value {v!r}"
    return None


@dataclass
class Result:
    record: Record
    status: str  # "pass" | "fail" | "skip" | "xfail" (failed as marked) | "xpass" (marked, passed)
    got: str = ""  # the server's answer, rendered (for reports)
    why: str = ""
    got_rows: Optional[List[str]] = None  # query: the rendered rows (after sorting)


def describe_expected(rec: Record) -> str:
    if rec.expect == "error":
        return f"ERROR {rec.error}"
    if rec.expect == "count":
        return f"OK, {rec.count} row(s) affected"
    if rec.expect == "ok":
        return "OK"
    return "rows " + repr(rec.rows)


def run_record(cur, rec: Record) -> Result:
    try:
        cur.execute(rec.sql)
    except pymysql.err.MySQLError as e:
        code = e.args[0] if e.args else None
        msg = e.args[1] if len(e.args) > 1 else ""
        got = f"ERROR {code}: {msg}"
        if rec.expect == "error" and code == rec.error:
            return Result(rec, "pass", got)
        return Result(rec, "fail", got, "unexpected error")
    if cur.description is not None:
        cols = len(cur.description)
        rows = [" ".join(render(v) for v in r) for r in cur.fetchall()]
        got_rows = sorted(rows) if rec.sort == "rowsort" else rows
        got = "rows " + repr(got_rows)
        if rec.kind != "query":
            if rec.expect == "error":
                return Result(rec, "fail", got, "expected an error", got_rows)
            return Result(rec, "fail", got, "a statement record returned rows", got_rows)
        if rec.expect == "error":
            return Result(rec, "fail", got, "expected an error", got_rows)
        if cols != len(rec.types):
            return Result(rec, "fail", got, f"{cols} column(s), the record says {len(rec.types)}", got_rows)
        split = [r.split(" ") if r else [""] for r in got_rows]
        bad = check_types(rec.types, [s for s in split if len(s) == cols] or [])
        if got_rows != rec.rows:
            return Result(rec, "fail", got, "rows differ", got_rows)
        if bad:
            return Result(rec, "fail", got, bad, got_rows)
        return Result(rec, "pass", got, "", got_rows)
    got = f"OK, {cur.rowcount} row(s) affected"
    if rec.kind == "query":
        return Result(rec, "fail", got, "expected rows")
    if rec.expect == "error":
        return Result(rec, "fail", got, "expected an error")
    if rec.expect == "count" and cur.rowcount != rec.count:
        return Result(rec, "fail", got, "affected rows differ")
    return Result(rec, "pass", got)


def run(conn, records, labels) -> List[Result]:
    """Runs the records in order on one connection (autocommit); never stops at a failure."""
    out = []
    with conn.cursor() as cur:
        for rec in records:
            if not rec.applies(labels):
                out.append(Result(rec, "skip"))
                continue
            r = run_record(cur, rec)
            if rec.expected_to_fail(labels):
                if r.status == "fail":
                    r.status = "xfail"
                else:
                    r.status, r.why = "xpass", "marked xfail (a known bug) but passed: remove the marker"
            out.append(r)
    return out


def connect(port, db=None, host="127.0.0.1", user="root", password=""):
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        database=db,
        autocommit=True,
        conv={},  # values as the text on the wire
        charset="utf8mb4",
        connect_timeout=10,
        read_timeout=60,
        write_timeout=60,
    )


def summary(results) -> dict:
    s = {"run": 0, "passed": 0, "xfailed": 0, "failed": 0, "skipped": 0}
    for r in results:
        if r.status == "skip":
            s["skipped"] += 1
        else:
            s["run"] += 1
            s[{"pass": "passed", "xfail": "xfailed"}.get(r.status, "failed")] += 1
    return s


def format_failure(r: Result) -> str:
    return (
        f"{r.record.where()}: {r.why}\n"
        f"    {r.record.sql.replace(chr(10), chr(10) + '    ')}\n"
        f"    want {describe_expected(r.record)}\n"
        f"    got  {r.got}"
    )


def complete(path, results):
    """Rewrites the expectations of `path` with the answers in `results` (authoring aid):
    query rows, statement counts and error codes."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    # Edit from the end so earlier line numbers stay valid.
    for r in sorted(results, key=lambda r: -r.record.line):
        rec = r.record
        if r.status in ("skip", "xfail") or rec.path != path:
            continue
        if rec.kind == "query" and r.got_rows is not None and rec.rows_span:
            a, b = rec.rows_span
            lines[a:b] = r.got_rows
        elif r.got.startswith("ERROR "):
            code = r.got.split()[1].rstrip(":")
            lines[rec.line - 1] = f"statement error {code}"
        elif rec.kind == "statement" and rec.expect == "count" and r.got.startswith("OK, "):
            lines[rec.line - 1] = f"statement count {r.got.split()[1]}"
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--db", default=None)
    ap.add_argument("--labels", default="unsharded,mariadb")
    ap.add_argument("--complete", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="also print the xfail records")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    labels = set(filter(None, a.labels.split(",")))
    conn = connect(a.port, a.db, a.host)
    rc = 0
    try:
        for path in a.files:
            records = parse(path)
            results = run(conn, records, labels)
            for r in results:
                if r.status in ("fail", "xpass") or (a.verbose and r.status == "xfail"):
                    print(("[known bug] " if r.status == "xfail" else "") + format_failure(r))
            s = summary(results)
            print(f"{path}: {len(records)} records, {s['run']} run, {s['passed']} passed, "
                  f"{s['xfailed']} known bugs (xfail), {s['failed']} failed, {s['skipped']} skipped")
            if s["failed"]:
                rc = 1
            if a.complete:
                complete(path, results)
    finally:
        conn.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
