"""mysql-connector-python (pure Python protocol), in particular MySQLCursorPrepared: the binary
protocol, COM_STMT_PREPARE / EXECUTE / CLOSE, and a prepare that fails with a syntax error."""

import datetime
from decimal import Decimal

import mysql.connector
import pytest
from mysql.connector import errors

BAD_PREPARE = "delete s from t as s where s version convert unsigned limit %s"


def _ddl(cnx, *stmts):
    cur = cnx.cursor()
    for s in stmts:
        cur.execute(s)
    cur.close()


def test_connect_and_select(target):
    cnx = target.connector()
    try:
        cur = cnx.cursor()
        cur.execute("select 1")
        assert cur.fetchall() == [(1,)]
    finally:
        cnx.close()


def test_autocommit_off_reports_the_open_transaction(target):
    """With autocommit off, an INSERT leaves a transaction open and the server status says so
    (IN_TRANS): connectors read it (`in_transaction` here; Connector/J sends ROLLBACK only when
    it is set, so without it the rollback was skipped and a later SET autocommit=1 committed the
    row). A ROLLBACK clears it and undoes the row."""
    cnx = target.connector()
    try:
        _ddl(cnx, "drop table if exists e2e_ac_off", "create table e2e_ac_off (id int primary key)")
        cnx.autocommit = False
        cur = cnx.cursor()
        cur.execute("select 1")
        cur.fetchall()
        assert not cnx.in_transaction, "no table read: no transaction yet"
        cur.execute("insert into e2e_ac_off values (1)")
        assert cnx.in_transaction
        cnx.rollback()
        assert not cnx.in_transaction
        cur.execute("insert into e2e_ac_off values (2)")
        assert cnx.in_transaction
        cnx.commit()
        assert not cnx.in_transaction
        cnx.autocommit = True
        cur.execute("select id from e2e_ac_off")
        assert cur.fetchall() == [(2,)]
        _ddl(cnx, "drop table e2e_ac_off")
    finally:
        cnx.close()


def test_prepared_cursor_class(target):
    cnx = target.connector()
    try:
        cur = cnx.cursor(prepared=True)
        assert isinstance(cur, mysql.connector.cursor.MySQLCursorPrepared)
    finally:
        cnx.close()


def test_prepared_insert_select_round_trip(target):
    cnx = target.connector()
    try:
        _ddl(
            cnx,
            "drop table if exists e2e_conn_prep",
            "create table e2e_conn_prep (id int primary key, name varchar(32), "
            "amount decimal(10,2), born date, seen datetime(6))",
        )
        cur = cnx.cursor(prepared=True)
        rows = [
            (1, "alpha", Decimal("1.50"), datetime.date(2001, 2, 3),
             datetime.datetime(2024, 5, 6, 7, 8, 9, 123456)),
            (2, "béta ✓", Decimal("-0.01"), None, None),
            (3, None, None, datetime.date(1999, 12, 31), datetime.datetime(2000, 1, 1)),
        ]
        ins = "insert into e2e_conn_prep (id, name, amount, born, seen) values (%s, %s, %s, %s, %s)"
        for r in rows:
            cur.execute(ins, r)
            assert cur.rowcount == 1
        sel = "select id, name, amount, born, seen from e2e_conn_prep where id = %s"
        for r in rows:
            cur.execute(sel, (r[0],))
            assert cur.fetchall() == [r]
        cur.execute("select id from e2e_conn_prep where id >= %s order by id", (2,))
        assert cur.fetchall() == [(2,), (3,)]
        cur.execute("select count(*) from e2e_conn_prep where id = %s", (42,))
        assert cur.fetchall() == [(0,)]
        cur.close()
    finally:
        cnx.close()


def test_prepare_syntax_error_keeps_connection(target):
    cnx = target.connector()
    try:
        cur = cnx.cursor(prepared=True)
        with pytest.raises(errors.ProgrammingError) as e:
            cur.execute(BAD_PREPARE, (1,))
        assert e.value.errno == 1064, e.value
        assert e.value.sqlstate == "42000", e.value
        # the same connection still works, through a new prepared cursor and a plain one
        cur2 = cnx.cursor(prepared=True)
        cur2.execute("select 1")
        assert cur2.fetchall() == [(1,)]
        cur3 = cnx.cursor()
        cur3.execute("select 1")
        assert cur3.fetchall() == [(1,)]
        # and the failed cursor itself can prepare again
        cur.execute("select %s", (7,))
        assert cur.fetchall() == [(7,)]
    finally:
        cnx.close()


def test_prepared_execute_error_keeps_connection(target):
    cnx = target.connector()
    try:
        _ddl(
            cnx,
            "drop table if exists e2e_conn_dup",
            "create table e2e_conn_dup (id int primary key)",
        )
        cur = cnx.cursor(prepared=True)
        cur.execute("insert into e2e_conn_dup (id) values (%s)", (1,))
        with pytest.raises(errors.IntegrityError) as e:
            cur.execute("insert into e2e_conn_dup (id) values (%s)", (1,))
        assert e.value.errno == 1062
        cur.execute("select id from e2e_conn_dup where id = %s", (1,))
        assert cur.fetchall() == [(1,)]
    finally:
        cnx.close()


def test_many_prepared_statements(target):
    """Statements prepared, executed and closed in turn (statement ids are not reused wrongly)."""
    cnx = target.connector()
    try:
        for i in range(50):
            cur = cnx.cursor(prepared=True)
            cur.execute("select %s, %s", (i, f"s{i}"))
            assert cur.fetchall() == [(i, f"s{i}")]
            cur.close()
        # several open at once, executed interleaved
        curs = [cnx.cursor(prepared=True) for _ in range(5)]
        for round_ in range(3):
            for k, c in enumerate(curs):
                c.execute(f"select %s + {k}", (round_,))
                assert c.fetchall() == [(round_ + k,)]
    finally:
        cnx.close()


def test_prepared_null_and_unicode_parameters(target):
    cnx = target.connector()
    try:
        cur = cnx.cursor(prepared=True)
        cur.execute("select %s, %s, %s", (None, "héllo 🎉", b"\x00\xff"))
        row = cur.fetchall()[0]
        assert row[0] is None
        assert row[1] == "héllo 🎉"
        assert bytes(row[2]) == b"\x00\xff"
    finally:
        cnx.close()


@pytest.mark.skipif(not mysql.connector.HAVE_CEXT, reason="C extension not available")
def test_c_extension_prepared(target):
    cnx = target.connector(use_pure=False)
    try:
        cur = cnx.cursor(prepared=True)
        cur.execute("select %s", (5,))
        assert cur.fetchall() == [(5,)]
        with pytest.raises(errors.ProgrammingError) as e:
            cur.execute(BAD_PREPARE, (1,))
        assert e.value.errno == 1064
        cur = cnx.cursor(prepared=True)
        cur.execute("select 1")
        assert cur.fetchall() == [(1,)]
    finally:
        cnx.close()


def test_send_long_data(target):
    """A file-like parameter goes in COM_STMT_SEND_LONG_DATA chunks before COM_STMT_EXECUTE."""
    import io

    payload = bytes(range(256)) * 4096  # 1 MiB
    cnx = target.connector()
    try:
        _ddl(
            cnx,
            "drop table if exists e2e_conn_long",
            "create table e2e_conn_long (id int primary key, b longblob, t longtext)",
        )
        cur = cnx.cursor(prepared=True)
        cur.execute(
            "insert into e2e_conn_long (id, b, t) values (%s, %s, %s)",
            (1, io.BytesIO(payload), io.BytesIO("long text ✓ ".encode() * 1000)),
        )
        cur.execute("select b, t from e2e_conn_long where id = %s", (1,))
        b, t = cur.fetchall()[0]
        assert bytes(b) == payload
        assert t == "long text ✓ " * 1000
    finally:
        cnx.close()


def test_ping_and_reset_connection(target):
    """COM_PING and COM_RESET_CONNECTION: the session's prepared statements are gone, the
    connection stays open."""
    cnx = target.connector()
    try:
        cnx.cmd_ping()
        cur = cnx.cursor(prepared=True)
        cur.execute("select %s", (1,))
        assert cur.fetchall() == [(1,)]
        assert cnx.cmd_reset_connection()
        with pytest.raises(errors.Error) as e:
            cur.execute("select %s", (2,))  # same statement id, deallocated by the reset
        assert e.value.errno == 1243, e.value
        cnx.cmd_ping()
        cur = cnx.cursor(prepared=True)
        cur.execute("select %s", (3,))
        assert cur.fetchall() == [(3,)]
    finally:
        cnx.close()


def _mariadb_status(mariadb, name):
    cnx = mariadb.pymysql()
    try:
        with cnx.cursor() as cur:
            cur.execute("show global status like %s", (name,))
            return int(cur.fetchone()[1])
    finally:
        cnx.close()


def test_backend_gateway_forwards_prepared_statements(mariadb, backend_target):
    """Through the --backend gateway a prepared statement runs as one on MariaDB too: prepared
    once per shard connection (not re-parsed as text per execute), and the statements the
    gateway keeps per connection stay bounded while a client prepares many distinct texts."""
    if not backend_target.is_gateway:
        pytest.skip("about the gateway's shard connections")
    cnx = backend_target.connector()
    try:
        cur = cnx.cursor(prepared=True)
        cur.execute("select %s + 1", (1,))
        assert cur.fetchall() == [(2,)]
        prepares = _mariadb_status(mariadb, "Com_stmt_prepare")
        executes = _mariadb_status(mariadb, "Com_stmt_execute")
        for i in range(20):
            cur.execute("select %s + 1", (i,))
            assert cur.fetchall() == [(i + 1,)]
        assert _mariadb_status(mariadb, "Com_stmt_prepare") == prepares
        assert _mariadb_status(mariadb, "Com_stmt_execute") - executes >= 20
        before = _mariadb_status(mariadb, "Prepared_stmt_count")
        for i in range(150):
            c = cnx.cursor(prepared=True)
            c.execute(f"select %s * {i}", (2,))
            assert c.fetchall() == [(2 * i,)]
            c.close()
        # The gateway keeps at most 64 statements per shard connection.
        assert _mariadb_status(mariadb, "Prepared_stmt_count") - before <= 64
        # After a USE (here a prepared one) the statements are prepared again: a statement
        # keeps the database it was prepared in.
        prepares = _mariadb_status(mariadb, "Com_stmt_prepare")
        use = cnx.cursor(prepared=True)
        use.execute(f"use {backend_target.keyspace}")
        cur.execute("select %s + 1", (7,))
        assert cur.fetchall() == [(8,)]
        assert _mariadb_status(mariadb, "Com_stmt_prepare") - prepares == 2
        # A shard error for a forwarded statement is that execute's error; the connection
        # stays usable.
        bad = cnx.cursor(prepared=True)
        with pytest.raises(errors.ProgrammingError) as e:
            bad.execute("select id from e2e_no_such_table where id = %s", (1,))
        assert e.value.errno == 1146
        cur.execute("select %s + 1", (41,))
        assert cur.fetchall() == [(42,)]
    finally:
        cnx.close()


def test_prepared_result_columns_follow_alter_table(backend_target):
    """A prepared `select *` run again after ALTER TABLE answers with the new columns, and
    keeps them on the executes after. Through the --backend gateway MariaDB caches result
    metadata on the shard connection (it skips column definitions it already sent): the
    gateway must notice the change and supply the right definitions either way."""
    cnx = backend_target.connector()
    try:
        _ddl(
            cnx,
            "drop table if exists e2e_conn_alter",
            "create table e2e_conn_alter (id int primary key, a varchar(8))",
            "insert into e2e_conn_alter values (1, 'x')",
        )
        cur = cnx.cursor(prepared=True)
        sel = "select * from e2e_conn_alter where id = %s"
        for _ in range(2):
            cur.execute(sel, (1,))
            assert cur.fetchall() == [(1, "x")]
            assert tuple(cur.column_names) == ("id", "a")
        _ddl(cnx, "alter table e2e_conn_alter add column b int default 7")
        for _ in range(3):
            cur.execute(sel, (1,))
            assert cur.fetchall() == [(1, "x", 7)]
            assert tuple(cur.column_names) == ("id", "a", "b")
    finally:
        cnx.close()
