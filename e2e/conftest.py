"""Fixtures for the end-to-end tests: real MySQL clients against real servers.

scripts/e2e.sh starts everything and passes the ports in the environment:

  SG_MARIADB_PORT   the throwaway MariaDB (scripts/mariadb.sh), database `test`
  SG_BACKEND_PORT   shardgate --backend mysql://root@127.0.0.1:$SG_MARIADB_PORT/test
  SG_EMBEDDED_PORT  shardgate with no backend: the embedded default (simulated engine shards)

A target whose port is not set is not collected, so the suite also runs against MariaDB alone
(SG_MARIADB_PORT only): that is how the tests themselves are checked. SG_REQUIRE_TARGETS (a
comma-separated list, set by scripts/e2e.sh) turns a missing port into an error instead.

The `target` fixture is parametrized over every available target: `direct` (MariaDB itself, a
check of the test's own expectations), `backend` and `embedded`.
"""

import os
from dataclasses import dataclass
from typing import Optional

import pytest

HOST = "127.0.0.1"
USER = "root"
PASSWORD = ""
TIMEOUT_S = 30


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    # Default database to name at connect time: none for the backend gateway (its connections
    # to MariaDB already use `test`), the unsharded keyspace `lookup` for the embedded default.
    db: Optional[str]
    # The database name a client may select (COM_INIT_DB, USE, the handshake): `test` on
    # MariaDB, the keyspace of the gateways (`commerce` in the embedded default, the database of
    # the --backend URL otherwise).
    keyspace: str

    @property
    def is_gateway(self) -> bool:
        return self.name != "direct"

    def pymysql(self, **kw):
        import pymysql

        args = dict(
            host=HOST,
            port=self.port,
            user=USER,
            password=PASSWORD,
            database=self.db,
            connect_timeout=10,
            read_timeout=TIMEOUT_S,
            write_timeout=TIMEOUT_S,
            autocommit=True,
            charset="utf8mb4",
        )
        args.update(kw)
        return pymysql.connect(**args)

    def connector(self, **kw):
        import mysql.connector

        args = dict(
            host=HOST,
            port=self.port,
            user=USER,
            password=PASSWORD,
            connection_timeout=TIMEOUT_S,
            use_pure=True,
            autocommit=True,
        )
        if self.db:
            args["database"] = self.db
        args.update(kw)
        return mysql.connector.connect(**args)


def _port(var: str) -> Optional[int]:
    v = os.environ.get(var, "").strip()
    return int(v) if v else None


def _targets():
    found = {}
    p = _port("SG_MARIADB_PORT")
    if p:
        found["direct"] = Target("direct", p, "test", "test")
    p = _port("SG_BACKEND_PORT")
    if p:
        found["backend"] = Target("backend", p, None, os.environ.get("SG_BACKEND_KEYSPACE", "test"))
    p = _port("SG_EMBEDDED_PORT")
    if p:
        # The embedded default's unsharded keyspace `lookup` takes any table, like a plain
        # MySQL database; its sharded keyspace `commerce` is exercised by the differential
        # SQL suite (scenarios/sql) and the simulation.
        ks = os.environ.get("SG_EMBEDDED_KEYSPACE", "lookup")
        found["embedded"] = Target("embedded", p, ks, ks)
    required = [t for t in os.environ.get("SG_REQUIRE_TARGETS", "").split(",") if t]
    missing = [t for t in required if t not in found]
    if missing:
        raise pytest.UsageError(f"targets required but their ports are not set: {missing}")
    return found


TARGETS = _targets()


def pytest_report_header(config):
    return "e2e targets: " + (
        ", ".join(f"{t.name}=127.0.0.1:{t.port}" for t in TARGETS.values()) or "none"
    )


def pytest_generate_tests(metafunc):
    """`target`: every available target; `gateway`: the gateways only; `backend_target`:
    MariaDB itself and the backend gateway (tests that compare with MariaDB's own answers)."""
    for fixture, names in (
        ("target", ["direct", "backend", "embedded"]),
        ("gateway", ["backend", "embedded"]),
        ("backend_target", ["direct", "backend"]),
    ):
        if fixture in metafunc.fixturenames:
            avail = [TARGETS[n] for n in names if n in TARGETS]
            metafunc.parametrize(
                fixture,
                avail or [pytest.param(None, marks=pytest.mark.skip(reason=f"no {fixture}"))],
                ids=[t.name for t in avail] or None,
            )


@pytest.fixture(scope="session")
def mariadb() -> Target:
    """MariaDB itself, for setting up data and for the expected side of comparisons."""
    if "direct" not in TARGETS:
        pytest.skip("SG_MARIADB_PORT not set")
    return TARGETS["direct"]


@pytest.fixture(scope="session")
def embedded() -> Target:
    if "embedded" not in TARGETS:
        pytest.skip("SG_EMBEDDED_PORT not set")
    return TARGETS["embedded"]


def pytest_configure(config):
    # Lines tests add for the end of the run (e2e/test_differential.py: records per setup).
    config._sg_summary_lines = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for line in getattr(config, "_sg_summary_lines", []):
        terminalreporter.write_line(line)
