"""libmariadb's own prepared-statement client (DBD::MariaDB with server-side prepare, see
libmariadb_ps.pl) through a recording relay: the binary protocol as a MariaDB client speaks it,
including MariaDB's metadata caching (MARIADB_CLIENT_CACHE_METADATA), which this client
negotiates with MariaDB and with the gateways alike. (scripts/lib.sh installs DBD::MariaDB,
Debian's libdbd-mariadb-perl.)

The relay keeps the first packet of every answer (sequence id 1), so the test sees each result's
column-count packet: `[count, 1]` when the column definitions follow, `[count, 0]` when the
server left them out because the client holds them from the statement's last result."""

import json
import os
import socket
import subprocess
import threading

from step_client import run_step_client

SCRIPT = os.path.join(os.path.dirname(__file__), "libmariadb_ps.pl")
TABLE = "e2e_libmariadb_cache"


class Relay:
    """A TCP relay for one connection that records the first packet of each server answer."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer_starts = []
        self.packets = []  # every packet: (from the server?, sequence id, payload)
        self.greeting = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self.target))
        up = threading.Thread(target=self._pipe, args=(client, server, False), daemon=True)
        up.start()
        self._pipe(server, client, True)
        up.join(10)

    def _pipe(self, src, dst, record):
        pending = b""
        while True:
            data = src.recv(65536)
            if not data:
                break
            # Recorded before it is passed on: the answer cannot be recorded before it.
            pending += data
            while len(pending) >= 4:
                n = int.from_bytes(pending[:3], "little")
                if len(pending) < 4 + n:
                    break
                self.packets.append((record, pending[3], pending[4 : 4 + n]))
                if record:
                    if pending[3] == 1:
                        self.answer_starts.append(pending[4 : 4 + n])
                    elif pending[3] == 0 and not self.greeting:
                        self.greeting = pending[4 : 4 + n]
                pending = pending[4 + n :]
            dst.sendall(data)
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def column_counts(self):
        """The answers that began a result set: OK (0x00), ERR (0xff) and the rest left out."""
        return [list(p) for p in self.answer_starts if p and p[0] not in (0x00, 0xFE, 0xFF)]

    def prepared_columns(self):
        """Per successful COM_STMT_PREPARE, the result columns its answer announced as (name,
        type code), from the column definitions after the parameter definitions."""
        answers = []
        packets = iter(self.packets)
        for from_server, seq, p in packets:
            if from_server or seq != 0 or p[:1] != b"\x16":
                continue
            _, _, head = next(packets)
            if head[:1] != b"\x00":
                continue  # ERR
            columns = int.from_bytes(head[5:7], "little")
            params = int.from_bytes(head[7:9], "little")
            defs = []
            while len(defs) < params + columns:
                _, _, d = next(packets)
                if not (d[:1] == b"\xfe" and len(d) < 9):  # an EOF between the blocks
                    defs.append(d)
            answers.append([column_name_and_type(d) for d in defs[params:]])
        return answers

    def close(self):
        self.thread.join(10)
        self.listener.close()


def column_name_and_type(d):
    """A column definition's name and type code (protocol 4.1: six length-encoded strings —
    MariaDB may add its extended metadata — then 13 fixed bytes: 0x0c, charset, length, type,
    flags, decimals, filler)."""
    fields = []
    i = 0
    for _ in range(5):
        n = d[i]
        fields.append(d[i + 1 : i + 1 + n].decode())
        i += 1 + n
    return fields[4], d[-13 + 1 + 2 + 4]


def run_steps(target, steps, relay=None):
    relay = relay or Relay(target.port)
    try:
        results = run_step_client(["perl", SCRIPT, str(relay.port), target.db or ""], steps)
    finally:
        relay.close()
    # libmariadb takes MariaDB's extended capabilities only from a server whose version says
    # MariaDB: MariaDB itself and the --backend gateway in front of it (which announces its
    # backend's version), not the embedded default ("8.0.40-shardgate", a MySQL to clients).
    return results, relay.column_counts(), b"MariaDB" in relay.greeting


def test_repeated_executes_skip_metadata_and_follow_a_changed_table(target):
    by_id = ["execute", "s", "1"]
    results, counts, mariadb = run_steps(
        target,
        [
            ["do", f"drop table if exists {TABLE}"],
            ["do", f"create table {TABLE} (id int primary key, a varchar(8), d decimal(6,2))"],
            ["do", f"insert into {TABLE} values (1, 'x', 1.50), (2, NULL, -3.25)"],
            ["prepare", "s", f"select * from {TABLE} where id = ?"],
            by_id,
            ["execute", "s", "2"],
            by_id,
            ["do", f"drop table {TABLE}"],
            # Same names and count (DBD::MariaDB keeps a statement's column count from its
            # prepare), other types: the binary row only decodes with the new definitions.
            ["do", f"create table {TABLE} (id int primary key, a bigint, d varchar(20))"],
            ["do", f"insert into {TABLE} values (1, 42, 'seven')"],
            by_id,
            by_id,
            ["do", f"drop table {TABLE}"],
        ],
    )
    first = {"names": ["id", "a", "d"], "rows": [["1", "x", "1.50"]]}
    changed = {"names": ["id", "a", "d"], "rows": [["1", "42", "seven"]]}
    assert results == [
        first,
        {"names": ["id", "a", "d"], "rows": [["2", None, "-3.25"]]},
        first,
        changed,
        changed,
    ]
    # One result header per execute. The first skips the definitions too: the prepare answer
    # described the columns (MariaDB's own, and the gateway's from its LIMIT 0 describe query);
    # the changed table's columns are described once, then skipped.
    assert len(counts) == 5, counts
    if not mariadb:
        assert target.name == "embedded"
        assert counts == [[3]] * 5, "no metadata caching: plain column counts"
        return
    assert counts == [[3, 0], [3, 0], [3, 0], [3, 1], [3, 0]], counts


def test_prepare_describes_select_star_with_real_types(target):
    """A prepare answer announces the statement's result columns with their types, as MariaDB's
    does: `SELECT *` included (clients built on libmysqlclient bind result buffers from them)."""
    relay = Relay(target.port)
    run_steps(
        target,
        [
            ["do", f"drop table if exists {TABLE}"],
            ["do", f"create table {TABLE} (id int primary key, a varchar(8), d decimal(6,2))"],
            ["prepare", "s", f"select * from {TABLE} where id >= ?"],
            ["prepare", "n", f"select d, id as ident from {TABLE} where id >= ?"],
            ["do", f"drop table {TABLE}"],
        ],
        relay,
    )
    LONG, VAR_STRING, NEWDECIMAL = 3, 253, 246
    # DBD::MariaDB prepares the `do` statements on the server too: those announce no columns.
    assert [c for c in relay.prepared_columns() if c] == [
        [("id", LONG), ("a", VAR_STRING), ("d", NEWDECIMAL)],
        [("d", NEWDECIMAL), ("ident", LONG)],
    ]


def test_prepare_of_a_missing_table_fails_at_prepare(target):
    """MySQL reports an unknown table when the statement is prepared, not at its execute."""
    relay = Relay(target.port)
    proc = subprocess.run(
        ["perl", SCRIPT, str(relay.port), target.db or ""],
        input=json.dumps([["prepare", "s", "select * from e2e_no_such_table where id = ?"]]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    relay.close()
    assert proc.returncode != 0
    assert "e2e_no_such_table" in proc.stderr and "doesn't exist" in proc.stderr, proc.stderr


def test_sysbench_reads_a_prepared_select_star(target):
    with target.pymysql() as c, c.cursor() as cur:
        cur.execute("drop table if exists e2e_sysbench_star")
        cur.execute("create table e2e_sysbench_star (id int primary key, v varchar(10))")
        cur.execute("insert into e2e_sysbench_star values (1, 'a'), (2, 'b'), (3, 'c')")
    try:
        proc = subprocess.run(
            [
                "sysbench",
                os.path.join(os.path.dirname(__file__), "sysbench_select_star.lua"),
                "--db-driver=mysql",
                "--mysql-host=127.0.0.1",
                f"--mysql-port={target.port}",
                "--mysql-user=root",
                "--mysql-password=",
                f"--mysql-db={target.db or target.keyspace}",
                "--db-ps-mode=auto",
                "--events=1",
                "--threads=1",
                "run",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "rows 2" in proc.stdout, proc.stdout
    finally:
        with target.pymysql() as c, c.cursor() as cur:
            cur.execute("drop table e2e_sysbench_star")
