"""Starting shardgate processes from tests and benchmarks (e2e/test_serving.py, scripts/bench-*.sh).

    gw = Gateway("serving", shards=[("ks/-80", url1), ("ks/80-", url2), ("seq/0", url3)],
                 vschema=path, args=["--query-log", path], http=True).start()
    gw.port, gw.http_port, gw.pid, gw.rss_kib(), gw.http_get("/metrics"), gw.stop()

The binary is $SG_BIN or target/release/shardgate. Each gateway gets free ports, logs to
.e2e/run/<name>.log and writes .e2e/run/<name>.pid (scripts/e2e.sh stops gateways whose pid files
an interrupted run left behind). A gateway gets SIGTERM when the process that started it dies.
"""

import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_DIR = os.path.join(os.environ.get("E2E_DIR", os.path.join(REPO, ".e2e")), "run")


class GatewayError(Exception):
    pass


def binary_path():
    return os.environ.get("SG_BIN") or os.path.join(REPO, "target", "release", "shardgate")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def wait_port(port, proc, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def rss_kib(pid):
    """VmRSS of a process in KiB (None once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Gateway:
    def __init__(self, name, shards=(), vschema=None, args=(), http=False, run_dir=RUN_DIR, env=None):
        """shards: (KEYSPACE/SHARD, URL) pairs; args: further command-line options."""
        self.name = name
        self.shards = list(shards)
        self.vschema = vschema
        self.extra = list(args)
        self.want_http = http
        self.run_dir = run_dir
        self.env = env or {}
        self.proc = None
        self.port = None
        self.http_port = None
        self.log_path = os.path.join(run_dir, f"{name}.log")
        self.pid_path = os.path.join(run_dir, f"{name}.pid")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self, port, http_port):
        a = [binary_path(), "--listen", f"127.0.0.1:{port}"]
        if self.vschema:
            a += ["--vschema", self.vschema]
        for spec, url in self.shards:
            a += ["--shard", f"{spec}={url}"]
        if http_port:
            a += ["--http", f"127.0.0.1:{http_port}"]
        return a + self.extra

    def start(self, timeout_s=60):
        path = binary_path()
        if not os.access(path, os.X_OK):
            raise GatewayError(f"no shardgate binary at {path} (build it or set SG_BIN)")
        os.makedirs(self.run_dir, exist_ok=True)
        env = dict(os.environ, SHARDGATE_LOG=os.environ.get("SHARDGATE_LOG", "info"))
        env.update(self.env)
        for _ in range(3):
            port = free_port()
            http_port = free_port() if self.want_http else None
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.argv(port, http_port),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    preexec_fn=_die_with_parent,
                )
            with open(self.pid_path, "w") as f:
                f.write(f"{self.proc.pid}\n")
            if wait_port(port, self.proc, timeout_s) and (
                http_port is None or wait_port(http_port, self.proc, timeout_s)
            ):
                self.port, self.http_port = port, http_port
                return self
            if self.proc.poll() is None:
                self.stop()
                break
        raise GatewayError(f"the {self.name} gateway did not start; log {self.log_path}:\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        return rss_kib(self.proc.pid) if self.proc else None

    def http_get(self, path, timeout_s=10):
        """(status, body text) of GET http://127.0.0.1:<http port><path>."""
        if not self.http_port:
            raise GatewayError("started without http=True")
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status, r.read().decode("utf-8", "replace")

    def stop(self, timeout_s=10):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        try:
            os.remove(self.pid_path)
        except OSError:
            pass

    def log_tail(self, n=30):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
