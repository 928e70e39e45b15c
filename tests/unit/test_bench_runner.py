"""`make bench` stops on the first Ctrl-C and writes what it measured so far.

The runner (bench.__main__.run) is driven in a process of its own with stand-in benchmarks: one that
finishes at once, one that runs until it is stopped, one that never gets its turn.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUICK = "import json, sys, pathlib; pathlib.Path(sys.argv[1], 'quick.json').write_text(json.dumps({'ops_per_s': 42}))"
# Runs until stopped, like a benchmark in the middle of its measurement; says where it is first.
ENDLESS = (
    "import os, sys, pathlib, threading; pathlib.Path(sys.argv[1], 'endless.pid').write_text(str(os.getpid())); "
    "threading.Event().wait()"
)
RUNNER = """
import sys
from pathlib import Path
from bench.__main__ import run
probes = {"quick": sys.argv[2], "endless": sys.argv[3], "later": sys.argv[2]}
results = Path(sys.argv[1])
sys.exit(run(["quick", "endless", "later"], results, lambda name: [sys.executable, "-c", probes[name], str(results)]))
"""
DEADLINE_S = 60.0


def _until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _ctrl_c_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_first_ctrl_c_stops_the_run_and_writes_the_figures_measured_so_far(tmp_path: Path) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tmp_path), QUICK, ENDLESS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A run started in the background by a shell inherits SIGINT ignored, and Python then never
        # raises KeyboardInterrupt: the runner gets Ctrl-C's default, as from a terminal.
        preexec_fn=_ctrl_c_default,
    )
    try:
        _until(lambda: (tmp_path / "endless.pid").exists() or runner.poll() is not None, "the second benchmark")
        endless = int((tmp_path / "endless.pid").read_text())
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=DEADLINE_S)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 130, output
    assert "Traceback" not in output
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert latest["results"] == {"quick": {"ops_per_s": 42}}
    assert latest["interrupted"] == {"during": "endless", "not_run": ["later"]}
    summary = (tmp_path / "latest.md").read_text()
    assert "Interrupted during endless" in summary and "| quick | ops_per_s | 42 |" in summary
    # The interrupted benchmark's process is stopped with the run, not left behind.
    _until(lambda: _gone(endless), "the interrupted benchmark to end")
