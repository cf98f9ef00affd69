"""Running a client script that reads its steps as JSON on stdin and prints one JSON answer a
line (e2e/libmariadb_ps.pl, e2e/node/mysql2_steps.js)."""

import json
import subprocess


def run_step_client(argv, steps, timeout_s=60):
    proc = subprocess.run(
        argv, input=json.dumps(steps), capture_output=True, text=True, timeout=timeout_s
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]
