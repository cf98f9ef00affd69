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

SCRIPT = os.path.join(os.path.dirname(__file__), "libmariadb_ps.pl")
TABLE = "e2e_libmariadb_cache"


class Relay:
    """A TCP relay for one connection that records the first packet of each server answer."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer_starts = []
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
            dst.sendall(data)
            if record:
                pending += data
                while len(pending) >= 4:
                    n = int.from_bytes(pending[:3], "little")
                    if len(pending) < 4 + n:
                        break
                    if pending[3] == 1:
                        self.answer_starts.append(pending[4 : 4 + n])
                    elif pending[3] == 0 and not self.greeting:
                        self.greeting = pending[4 : 4 + n]
                    pending = pending[4 + n :]
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def column_counts(self):
        """The answers that began a result set: OK (0x00), ERR (0xff) and the rest left out."""
        return [list(p) for p in self.answer_starts if p and p[0] not in (0x00, 0xFE, 0xFF)]

    def close(self):
        self.thread.join(10)
        self.listener.close()


def run_steps(target, steps):
    relay = Relay(target.port)
    proc = subprocess.run(
        ["perl", SCRIPT, str(relay.port), target.db or ""],
        input=json.dumps(steps),
        capture_output=True,
        text=True,
        timeout=60,
    )
    relay.close()
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
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
    # One result header per execute. The first may skip (MariaDB compares with the prepare
    # answer's columns; the gateway's prepare answer has names only, so it describes them);
    # the repeats skip; the changed table's columns are described once, then skipped.
    assert len(counts) == 5, counts
    if not mariadb:
        assert target.name == "embedded"
        assert counts == [[3]] * 5, "no metadata caching: plain column counts"
        return
    assert counts[0][0] == 3
    assert counts[1:] == [[3, 0], [3, 0], [3, 1], [3, 0]], counts
