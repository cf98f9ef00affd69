"""PyMySQL: plain queries, multi-statements (CLIENT_MULTI_STATEMENTS, MORE_RESULTS), errors in
the middle of a batch, unbuffered result sets (SSCursor) and large packets."""

import hashlib

import pymysql
import pytest
from pymysql.constants import CLIENT


def test_basic_queries(target):
    cnx = target.pymysql()
    try:
        with cnx.cursor() as cur:
            assert cur.execute("select 1") == 1
            assert cur.fetchall() == ((1,),)
            cur.execute("select 'a' as x, 2 as y")
            assert [d[0] for d in cur.description] == ["x", "y"]
            assert cur.fetchall() == (("a", 2),)
            cur.execute("drop table if exists e2e_py_basic")
            cur.execute("create table e2e_py_basic (id int primary key, v varchar(20))")
            assert cur.execute("insert into e2e_py_basic (id, v) values (1, 'one'), (2, 'two'), (3, NULL)") == 3
            cur.execute("select id, v from e2e_py_basic order by id")
            assert cur.fetchall() == ((1, "one"), (2, "two"), (3, None))
            assert cur.execute("update e2e_py_basic set v = 'uno' where id = 1") == 1
            assert cur.execute("delete from e2e_py_basic where id = 2") == 1
            cur.execute("select id, v from e2e_py_basic order by id")
            assert cur.fetchall() == ((1, "uno"), (3, None))
        cnx.ping(reconnect=False)
    finally:
        cnx.close()


def test_now_is_the_wall_clock(target):
    """NOW() and UNIX_TIMESTAMP() read the real calendar: the embedded default's simulated
    shards included (its engines count from the Unix epoch only inside the simulation)."""
    import time

    conn = target.pymysql()
    try:
        cur = conn.cursor()
        cur.execute("select unix_timestamp()")
        (ts,) = cur.fetchone()
        assert abs(int(ts) - time.time()) < 120, ts
    finally:
        conn.close()


def test_error_keeps_connection(target):
    cnx = target.pymysql()
    try:
        with cnx.cursor() as cur:
            with pytest.raises(pymysql.err.ProgrammingError) as e:
                cur.execute("select * from e2e_no_such_table")
            assert e.value.args[0] == 1146
            with pytest.raises(pymysql.err.ProgrammingError) as e:
                cur.execute("selct 1")
            assert e.value.args[0] == 1064
            cur.execute("select 1")
            assert cur.fetchall() == ((1,),)
    finally:
        cnx.close()


def test_default_autocommit_off(target):
    """PyMySQL's defaults (autocommit off: it sends SET AUTOCOMMIT = 0), then explicit commits."""
    cnx = target.pymysql(autocommit=False)
    try:
        with cnx.cursor() as cur:
            cur.execute("select 1")
            assert cur.fetchall() == ((1,),)
        cnx.commit()
        cnx.rollback()
    finally:
        cnx.close()


def test_select_database(target):
    """The keyspace by name: in the handshake, with COM_INIT_DB and with USE; an unknown one
    is refused with 1049 and the connection stays usable."""
    cnx = target.pymysql(database=target.keyspace)
    cnx.close()
    cnx = target.pymysql(database=None)
    try:
        cnx.select_db(target.keyspace)
        with cnx.cursor() as cur:
            cur.execute("select 1")
            assert cur.fetchall() == ((1,),)
            cur.execute(f"use {target.keyspace}")
            with pytest.raises(pymysql.err.OperationalError) as e:
                cur.execute("use e2e_no_such_db")
            assert e.value.args[0] == 1049
            cur.execute("select 2")
            assert cur.fetchall() == ((2,),)
    finally:
        cnx.close()
    with pytest.raises(pymysql.err.OperationalError) as e:
        target.pymysql(database="e2e_no_such_db")
    assert e.value.args[0] == 1049


def test_multi_statements(target):
    cnx = target.pymysql(client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        with cnx.cursor() as cur:
            cur.execute("select 1; select 2")
            assert cur.fetchall() == ((1,),)
            assert cur.nextset()
            assert cur.fetchall() == ((2,),)
            assert not cur.nextset()
            cur.execute("select 3")
            assert cur.fetchall() == ((3,),)
    finally:
        cnx.close()


def test_multi_statements_failing_second(target):
    cnx = target.pymysql(client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        with cnx.cursor() as cur:
            cur.execute("select 1; selct")
            assert cur.fetchall() == ((1,),)
            with pytest.raises(pymysql.err.ProgrammingError) as e:
                cur.nextset()
            assert e.value.args[0] == 1064
            cur.execute("select 1")
            assert cur.fetchall() == ((1,),)
    finally:
        cnx.close()


def test_multi_statements_update_then_error(target):
    """An OK with MORE_RESULTS, then the ERR of the second statement; the first one took effect."""
    cnx = target.pymysql(client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        with cnx.cursor() as cur:
            cur.execute("drop table if exists e2e_py_multi")
            cur.execute("create table e2e_py_multi (id int primary key, v int)")
            cur.execute("insert into e2e_py_multi (id, v) values (1, 10)")
            n = cur.execute("update e2e_py_multi set v = 11 where id = 1; selct")
            assert n == 1
            with pytest.raises(pymysql.err.ProgrammingError) as e:
                cur.nextset()
            assert e.value.args[0] == 1064
            cur.execute("select v from e2e_py_multi where id = 1")
            assert cur.fetchall() == ((11,),)
            # an error in the middle stops the batch: the third statement does not run
            cur.execute("select 1; select * from e2e_no_such_table; update e2e_py_multi set v = 12")
            assert cur.fetchall() == ((1,),)
            with pytest.raises(pymysql.err.ProgrammingError) as e:
                cur.nextset()
            assert e.value.args[0] == 1146
            cur.execute("select v from e2e_py_multi where id = 1")
            assert cur.fetchall() == ((11,),)
    finally:
        cnx.close()


def _fill(cur, table, n, width=40):
    cur.execute(f"drop table if exists {table}")
    cur.execute(f"create table {table} (id int primary key, payload varchar(64) not null)")
    batch = 500
    for start in range(0, n, batch):
        vals = ", ".join(
            f"({i}, '{('row-%d-' % i).ljust(width, 'x')}')" for i in range(start, min(n, start + batch))
        )
        cur.execute(f"insert into {table} (id, payload) values {vals}")


def test_unbuffered_cursor_many_rows(target):
    n = 20000
    cnx = target.pymysql()
    try:
        with cnx.cursor() as cur:
            _fill(cur, "e2e_py_many", n)
        cur = cnx.cursor(pymysql.cursors.SSCursor)
        cur.execute("select id, payload from e2e_py_many order by id")
        count = 0
        for row in cur:  # fetched row by row off the socket
            assert row[0] == count
            assert row[1].startswith(f"row-{count}-")
            count += 1
        assert count == n
        cur.close()
        # stop reading half way: closing the cursor drains the rest, the connection goes on
        cur = cnx.cursor(pymysql.cursors.SSCursor)
        cur.execute("select id from e2e_py_many order by id")
        assert list(cur.fetchmany(10)) == [(i,) for i in range(10)]
        cur.close()
        with cnx.cursor() as c2:
            c2.execute("select count(*) from e2e_py_many")
            assert c2.fetchall() == ((n,),)
    finally:
        cnx.close()


def test_large_packet_round_trip(target):
    """A 17 MiB value: packets over 16 MiB are split in both directions."""
    size = 17 * 1024 * 1024 + 3
    blob = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    cnx = target.pymysql()
    try:
        with cnx.cursor() as cur:
            cur.execute("drop table if exists e2e_py_big")
            cur.execute("create table e2e_py_big (id int primary key, b longblob)")
            cur.execute("insert into e2e_py_big (id, b) values (%s, %s)", (1, blob))
            cur.execute("select b from e2e_py_big where id = 1")
            (got,) = cur.fetchone()
            assert len(got) == size
            assert hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()
            cur.execute("select 1")
            assert cur.fetchall() == ((1,),)
    finally:
        cnx.close()
