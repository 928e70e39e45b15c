"""The locust scenario runs end to end against the dev stack (a few seconds, a handful of users)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_locust_replays_a_drop(stack, tmp_path) -> None:
    # Locust runs for a fixed time: sign-ups and the drop's start must fit in it on a loaded machine too
    # (8 s was too short beside the other worker's rush, and no order was placed).
    env = {**os.environ, "LIVEDROP_WS_URL": stack.ws_url, "LIVEDROP_DROP_DELAY": "2", "LIVEDROP_DROP_STOCK": "20"}
    result = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(ROOT / "bench/locustfile.py"), "--headless",
            "-u", "6", "-r", "6", "-t", "20s", "--host", stack.rest_url, "--csv", str(tmp_path / "run"),
            "--only-summary", "--stop-timeout", "5",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(tmp_path / "run_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    assert int(rows["/drops/[id]"]["Request Count"]) > 0
    assert int(rows["/orders"]["Request Count"]) > 0
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert "connect" in rows  # viewers opened their sockets
