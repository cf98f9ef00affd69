"""TLS toward clients, the static auth file, caching_sha2_password full authentication and
per-user keyspaces, with real clients (the mariadb CLI, PyMySQL, mysql-connector-python).

Each gateway here is started by the test module itself over the embedded default (keyspaces
`commerce` and `lookup`, no MariaDB needed), with a throwaway self-signed certificate made by
the openssl CLI and an auth file in Vitess's static-auth shape.
"""

import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess

import mysql.connector
import pymysql
import pytest
from mysql.connector import errors

from gateway import Gateway, GatewayError

CLI = shutil.which("mariadb") or shutil.which("mysql")
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")

HOST = "127.0.0.1"


def native_hash(password):
    """What MySQL's PASSWORD() returns: '*' + upper-case hex of SHA1(SHA1(password))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


USERS = {
    "root": [{"Password": ""}],
    "app": [{"Password": "app-secret", "UserData": "app"}],
    # Hash-only entries: caching_sha2_password clients need full authentication (over TLS).
    "hashed": [{"MysqlNativePassword": native_hash("hash-secret")}],
    "cached": [{"MysqlNativePassword": native_hash("cache-secret")}],
    "limited": [{"Password": "lim", "Keyspaces": ["lookup"]}],
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    r = subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=localhost"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    users = str(d / "users.json")
    with open(users, "w") as f:
        json.dump(USERS, f)
    return cert, key, users


def _start(name, certs, *extra):
    cert, key, users = certs
    gw = Gateway(
        name,
        args=["--tls-cert", cert, "--tls-key", key, "--auth-file", users, *extra],
        env={"SHARDGATE_LOG": "info,shardgate_core::server=debug"},
    )
    # A log per run: the tests below count lines in it.
    try:
        os.remove(gw.log_path)
    except OSError:
        pass
    return gw.start()


@pytest.fixture(scope="module")
def gw(certs):
    g = _start("tls-auth", certs)
    yield g
    g.stop()


@pytest.fixture(scope="module")
def secure_gw(certs):
    g = _start("tls-auth-secure", certs, "--require-secure-transport")
    yield g
    g.stop()


NO_VERIFY = {"check_hostname": False, "verify_mode": ssl.CERT_NONE}


def pymysql_connect(gw, user, password, tls=True, **kw):
    args = dict(host=HOST, port=gw.port, user=user, password=password, connect_timeout=10,
                read_timeout=30, autocommit=True)
    if tls:
        args["ssl"] = NO_VERIFY
    else:
        args["ssl_disabled"] = True  # PyMySQL otherwise uses TLS whenever it is offered
    args.update(kw)
    return pymysql.connect(**args)


def connector_connect(gw, user, password, tls=True, **kw):
    args = dict(host=HOST, port=gw.port, user=user, password=password, use_pure=True,
                autocommit=True, connection_timeout=30)
    if tls:
        args.update(ssl_disabled=False, ssl_verify_cert=False)
    else:
        args.update(ssl_disabled=True)
    args.update(kw)
    return mysql.connector.connect(**args)


def select_1(cnx):
    cur = cnx.cursor()
    cur.execute("select 1")
    rows = cur.fetchall()
    cur.close()
    return [tuple(r) for r in rows]


def run_cli(gw, *args):
    cmd = [CLI, f"-h{HOST}", f"-P{gw.port}", "--batch", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


# ---- TLS with the mariadb CLI ----

@pytest.mark.skipif(CLI is None, reason="mariadb client not installed")
def test_tls_mariadb_cli_select_and_cipher(gw):
    r = run_cli(gw, "-uapp", "-papp-secret", "--ssl", "--skip-ssl-verify-server-cert",
                "-e", "select 1 as one; \\s")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("one\n1\n"), r.stdout
    # The CLI's `status` reports the cipher of its TLS session.
    line = next((l for l in r.stdout.splitlines() if l.startswith("SSL:")), "")
    assert "Cipher in use is" in line, r.stdout


@pytest.mark.skipif(CLI is None, reason="mariadb client not installed")
def test_tls_mariadb_cli_wrong_password(gw):
    r = run_cli(gw, "-uapp", "-pwrong", "--ssl", "--skip-ssl-verify-server-cert", "-e", "select 1")
    assert r.returncode == 1
    assert "ERROR 1045 (28000)" in r.stderr, r.stderr
    assert "Access denied for user 'app'@'127.0.0.1' (using password: YES)" in r.stderr, r.stderr


def test_tls_pymysql_reports_a_cipher(gw):
    cnx = pymysql_connect(gw, "app", "app-secret")
    try:
        cipher = cnx._sock.cipher()
        assert cipher and cipher[1].startswith("TLS"), cipher
        assert select_1(cnx) == [(1,)]
        # The gateway reports the client connection's TLS session (not a shard's), as
        # MySQL does: the client's own view and the server's agree.
        with cnx.cursor() as cur:
            cur.execute("show status like 'Ssl_%'")
            status = dict(cur.fetchall())
        assert status == {"Ssl_cipher": cipher[0], "Ssl_version": cipher[1]}, (status, cipher)
    finally:
        cnx.close()


def test_tls_connector_native_password(gw):
    cnx = connector_connect(gw, "app", "app-secret")
    try:
        assert cnx._socket.sock.cipher() is not None
        assert select_1(cnx) == [(1,)]
    finally:
        cnx.close()


def test_without_tls_the_same_gateway_still_serves(gw):
    cnx = pymysql_connect(gw, "app", "app-secret", tls=False)
    try:
        assert not isinstance(cnx._sock, ssl.SSLSocket)
        assert select_1(cnx) == [(1,)]
        with cnx.cursor() as cur:
            cur.execute("show session status like 'ssl_cipher'")
            assert cur.fetchall() == (("Ssl_cipher", ""),)
    finally:
        cnx.close()


# ---- caching_sha2_password ----

def test_caching_sha2_clear_password_user_over_tls(gw):
    cnx = connector_connect(gw, "app", "app-secret", auth_plugin="caching_sha2_password")
    try:
        assert select_1(cnx) == [(1,)]
    finally:
        cnx.close()


def _full_auth_requests(gw, user):
    needle = "asking for full authentication"
    lines = (re.sub(r"\x1b\[[0-9;]*m", "", l) for l in gw.log_tail(100000).splitlines())
    return sum(1 for l in lines if needle in l and f"user={user}" in l)


def test_caching_sha2_full_auth_over_tls_then_cached(gw):
    # A hash-only entry: the first login sends the password over TLS (full authentication),
    # the next ones take the fast path from the gateway's cache.
    for _ in range(3):
        cnx = connector_connect(gw, "cached", "cache-secret", auth_plugin="caching_sha2_password")
        try:
            assert cnx._socket.sock.cipher() is not None
            assert select_1(cnx) == [(1,)]
        finally:
            cnx.close()
    assert _full_auth_requests(gw, "cached") == 1, gw.log_tail()


def test_caching_sha2_full_auth_wrong_password(gw):
    with pytest.raises(errors.ProgrammingError) as e:
        connector_connect(gw, "hashed", "wrong", auth_plugin="caching_sha2_password")
    assert e.value.errno == 1045, e.value
    assert e.value.sqlstate == "28000", e.value
    cnx = connector_connect(gw, "hashed", "hash-secret", auth_plugin="caching_sha2_password")
    try:
        assert select_1(cnx) == [(1,)]
    finally:
        cnx.close()


def test_caching_sha2_hash_user_without_tls_is_switched_to_native(gw):
    # No TLS, no RSA: the gateway switches the client to mysql_native_password.
    cnx = connector_connect(gw, "hashed", "hash-secret", tls=False,
                            auth_plugin="caching_sha2_password")
    try:
        assert select_1(cnx) == [(1,)]
    finally:
        cnx.close()
    with pytest.raises(errors.ProgrammingError) as e:
        connector_connect(gw, "hashed", "wrong", tls=False, auth_plugin="caching_sha2_password")
    assert e.value.errno == 1045, e.value


# ---- bad credentials ----

@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_bad_credentials_1045(gw, tls):
    for user, password in [("app", "wrong"), ("nobody", "x"), ("hashed", "")]:
        with pytest.raises(pymysql.err.OperationalError) as e:
            pymysql_connect(gw, user, password, tls=tls)
        assert e.value.args[0] == 1045, e.value
        using = "YES" if password else "NO"
        assert e.value.args[1] == (
            f"Access denied for user '{user}'@'127.0.0.1' (using password: {using})"
        ), e.value


def test_root_comes_from_the_auth_file(gw):
    # The file replaces the default accounts; it lists root with no password here.
    cnx = pymysql_connect(gw, "root", "", tls=False)
    cnx.close()


# ---- per-user keyspaces ----

def test_denied_keyspace_1044_and_the_connection_stays_usable(gw):
    cnx = connector_connect(gw, "limited", "lim")
    try:
        cur = cnx.cursor()
        for sql in ["select * from commerce.customer", "use commerce",
                    "insert into commerce.customer (customer_id, email) values (7, 'x')"]:
            with pytest.raises(errors.ProgrammingError) as e:
                cur.execute(sql)
            assert e.value.errno == 1044, (sql, e.value)
            assert e.value.sqlstate == "42000", (sql, e.value)
            assert e.value.msg == (
                "Access denied for user 'limited'@'%' to database 'commerce'"
            ), e.value
            assert select_1(cnx) == [(1,)]
        with pytest.raises(errors.ProgrammingError) as e:
            cnx.database = "commerce"  # COM_INIT_DB
        assert e.value.errno == 1044
        cur.execute("show databases")
        assert cur.fetchall() == [("lookup",)]
        cur.execute("select database()")
        assert cur.fetchall() == [("lookup",)]
        cur.execute("create table if not exists tls_auth_t (id bigint primary key)")
        cur.execute("select count(*) from tls_auth_t")
        assert cur.fetchall() == [(0,)]
    finally:
        cnx.close()


def test_denied_keyspace_at_connect_is_1044(gw):
    with pytest.raises(pymysql.err.OperationalError) as e:
        pymysql_connect(gw, "limited", "lim", database="commerce")
    assert e.value.args[0] == 1044, e.value
    cnx = pymysql_connect(gw, "limited", "lim", database="lookup")
    cnx.close()


# ---- --require-secure-transport ----

def test_require_secure_transport_refuses_plain_clients(secure_gw):
    with pytest.raises(pymysql.err.OperationalError) as e:
        pymysql_connect(secure_gw, "app", "app-secret", tls=False)
    assert e.value.args[0] == 3159, e.value
    assert e.value.args[1] == (
        "Connections using insecure transport are prohibited while --require_secure_transport=ON."
    )
    assert "secure transport is required" in secure_gw.log_tail(), secure_gw.log_tail()
    cnx = pymysql_connect(secure_gw, "app", "app-secret", tls=True)
    try:
        assert select_1(cnx) == [(1,)]
    finally:
        cnx.close()


@pytest.mark.skipif(CLI is None, reason="mariadb client not installed")
def test_require_secure_transport_mariadb_cli(secure_gw):
    r = run_cli(secure_gw, "-uapp", "-papp-secret", "--skip-ssl", "-e", "select 1")
    assert r.returncode == 1
    assert "ERROR 3159 (HY000)" in r.stderr, r.stderr
    r = run_cli(secure_gw, "-uapp", "-papp-secret", "--ssl", "--skip-ssl-verify-server-cert",
                "-e", "select 1 as one")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "one\n1\n"


# ---- TLS toward shards (?ssl=true) ----

def test_shard_over_tls(certs, secure_gw):
    """A gateway whose shard is another gateway that only accepts TLS: the shard URL's
    ?ssl=true makes the backend connection switch to TLS before authenticating."""
    url = f"mysql://app:app-secret@127.0.0.1:{secure_gw.port}/lookup"
    front = Gateway("tls-auth-front", shards=[("lookup/0", url + "?ssl=true")]).start()
    try:
        cnx = pymysql_connect(front, "root", "", tls=False)
        try:
            cur = cnx.cursor()
            cur.execute("create table if not exists tls_shard_t (id bigint primary key, v varchar(10))")
            cur.execute("delete from tls_shard_t")
            cur.execute("insert into tls_shard_t (id, v) values (1, 'a'), (2, 'b')")
            cur.execute("select v from tls_shard_t order by id")
            assert cur.fetchall() == (("a",), ("b",))
        finally:
            cnx.close()
    finally:
        front.stop()
    # Without ?ssl=true the same shard refuses the gateway (3159), which reports it.
    plain = Gateway("tls-auth-front-plain", shards=[("lookup/0", url)]).start()
    try:
        cnx = pymysql_connect(plain, "root", "", tls=False)
        try:
            with pytest.raises(pymysql.err.MySQLError) as e:
                cnx.cursor().execute("select 1")
            assert "3159" in str(e.value) or "insecure transport" in str(e.value), e.value
        finally:
            cnx.close()
    finally:
        plain.stop()


def _openssl(*args):
    r = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def ca_signed(tmp_path_factory, certs):
    """A CA and a server certificate it signed for 127.0.0.1 (the shard's host in its URL)."""
    d = tmp_path_factory.mktemp("ca")
    ca, ca_key = str(d / "ca.pem"), str(d / "ca-key.pem")
    cert, key, csr = str(d / "server.pem"), str(d / "server-key.pem"), str(d / "server.csr")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
             "-days", "2", "-subj", "/CN=shardgate test CA")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=shard")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", str(ext))
    return ca, cert, key, certs[2]


def test_shard_over_tls_verified_against_a_ca(ca_signed, certs):
    """?ssl-ca=FILE: the shard's certificate must chain to that CA and name the URL's host.
    The same shard seen through another CA (the module's self-signed certificate) is refused
    with a clear error, and the client connection stays usable."""
    ca, cert, key, users = ca_signed
    shard = _start("tls-auth-ca-shard", (cert, key, users), "--require-secure-transport")
    url = f"mysql://app:app-secret@127.0.0.1:{shard.port}/lookup"
    try:
        front = Gateway("tls-auth-ca-front", shards=[("lookup/0", url + f"?ssl-ca={ca}")]).start()
        try:
            cnx = pymysql_connect(front, "root", "", tls=False)
            try:
                assert select_1(cnx) == [(1,)]
            finally:
                cnx.close()
        finally:
            front.stop()
        wrong = Gateway("tls-auth-ca-wrong", shards=[("lookup/0", url + f"?ssl-ca={certs[0]}")]).start()
        try:
            cnx = pymysql_connect(wrong, "root", "", tls=False)
            try:
                with pytest.raises(pymysql.err.MySQLError) as e:
                    select_1(cnx)
                assert e.value.args[0] in (2013, 1429), e.value
                with open(wrong.log_path) as f:
                    log = f.read()
                assert "TLS toward the shard failed" in log and "UnknownIssuer" in log, log[-2000:]
            finally:
                cnx.close()
        finally:
            wrong.stop()
    finally:
        shard.stop()
    # A CA file that is not there stops the gateway at start-up, naming the file.
    with pytest.raises(GatewayError) as e:
        Gateway("tls-auth-ca-missing", shards=[("lookup/0", url + "?ssl-ca=/nonexistent/ca.pem")]).start()
    assert "/nonexistent/ca.pem" in str(e.value), e.value
