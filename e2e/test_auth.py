"""Authentication: the right credentials log in, wrong ones get ERR 1045 / 28000."""

import mysql.connector
import pymysql
import pytest
from mysql.connector import errors


def test_wrong_password_pymysql(target):
    with pytest.raises(pymysql.err.OperationalError) as e:
        target.pymysql(password="wrong")
    assert e.value.args[0] == 1045, e.value


def test_unknown_user_pymysql(target):
    with pytest.raises(pymysql.err.OperationalError) as e:
        target.pymysql(user="e2e_nobody", password="")
    assert e.value.args[0] == 1045, e.value


def test_wrong_password_connector(target):
    with pytest.raises(errors.ProgrammingError) as e:
        target.connector(password="wrong")
    assert e.value.errno == 1045, e.value
    assert e.value.sqlstate == "28000", e.value


def test_login_after_failed_login(target):
    with pytest.raises(pymysql.err.OperationalError):
        target.pymysql(password="wrong")
    cnx = target.pymysql()
    try:
        with cnx.cursor() as cur:
            cur.execute("select 1")
            assert cur.fetchall() == ((1,),)
    finally:
        cnx.close()
