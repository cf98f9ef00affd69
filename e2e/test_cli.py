"""The mariadb command-line client in batch mode."""

import shutil
import subprocess

import pytest

CLI = shutil.which("mariadb") or shutil.which("mysql")
pytestmark = pytest.mark.skipif(CLI is None, reason="mariadb client not installed")


def run_cli(target, *args, input=None):
    cmd = [CLI, "-h127.0.0.1", f"-P{target.port}", "-uroot", "--batch", *args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)


def test_batch_select(target):
    r = run_cli(target, "-e", "select 1; select 'a' as x")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n1\nx\na\n"


def test_batch_statements_from_stdin(target):
    r = run_cli(target, input="select 1 as one;\nselect 'b' as y;\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "one\n1\ny\nb\n"


def test_batch_syntax_error(target):
    r = run_cli(target, "-e", "selct 1")
    assert r.returncode == 1
    assert "ERROR 1064 (42000)" in r.stderr, r.stderr


def test_batch_error_stops_the_batch(target):
    # The client sends one statement at a time and stops at the first error.
    r = run_cli(target, "-e", "select 1 as a; selct; select 2 as b")
    assert r.returncode == 1
    assert r.stdout == "a\n1\n"
    assert "ERROR 1064 (42000)" in r.stderr, r.stderr


def test_batch_wrong_password(target):
    r = run_cli(target, "-pwrong", "-e", "select 1")
    assert r.returncode == 1
    assert "ERROR 1045 (28000)" in r.stderr, r.stderr
