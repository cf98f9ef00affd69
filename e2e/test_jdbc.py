"""MariaDB Connector/J through JDBC (e2e/java/JdbcSteps.java, run as a source file by the JDK
that scripts/lib.sh installs with Debian's libmariadb-java): server-side prepared statements,
batches, generated keys, multi-statements, transactions with autocommit off — Connector/J sends
ROLLBACK only when the server status says a transaction is open —, a streaming result and
Statement.cancel(), which kills the running query from a second connection (1317)."""

import os
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "java", "JdbcSteps.java")
JAR = "/usr/share/java/mariadb-java-client.jar"

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None or not os.path.exists(JAR),
    reason="java or MariaDB Connector/J missing (scripts/lib.sh ensure_java_clients installs them)",
)


def test_connector_j_sees_what_mariadb_answers(target):
    proc = subprocess.run(
        ["java", "-cp", JAR, SCRIPT, str(target.port), target.keyspace],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    assert results == {
        "insert": "3",
        "generated key": "4",
        "update": "2",
        "prepared select": "2,x,-2.25 3,z,0.00 4,k,null",
        "prepared metadata": "3 INTEGER VARCHAR DECIMAL",
        "batch": "[1, 1, 1]",
        "multi": "7 | updated 1 | two",
        "multi error": "ERR 1146 42S02",
        "after error": "usable",
        "rollback": "0",
        "commit": "1",
        "streaming": "8",
        "cancel": "ERR 1317 70100",
        "after cancel": "usable",
        "valid": "true",
    }, proc.stdout
