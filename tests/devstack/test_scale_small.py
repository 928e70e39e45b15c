"""`make scale` at a few hundred per stage (bench/scale.py --small), on a dev stack of its own: every
stage completes with no timeout, no duplicate notice and nothing in a dead-letter queue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Slow: a dev stack of its own per stage (make test starts files with slow tests first).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_every_scale_stage_completes_cleanly_at_small_size(tmp_path) -> None:
    done = subprocess.run(
        # Timeouts at a quarter: enforced and short, yet with room for a test session's busy machine
        # (`make scale` runs the full sizes at 0.05).
        [sys.executable, "-m", "bench.scale", "--small", "--timeout-scale", "0.25", "--sell-out-timeout-scale", "0.25"]
        + ["--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "scale.json").read_text())
    assert set(result["stages"]) == {"waiting_room", "draw", "sell_out"}
    for name, stage in result["stages"].items():
        assert (stage["timeouts"], stage["duplicate_notices"], stage["dlq"]) == (0, 0, 0), name
    assert result["stages"]["waiting_room"]["invocations"].get("line_slices", 0) >= 1
    draw = result["stages"]["draw"]
    assert draw["inbox"] == {"draw_won": 20, "draw_lost": 180}
    # Every order settled: charged (the fake gateway declines nobody here), none left pending.
    assert result["stages"]["sell_out"]["orders"] == {"confirmed": 60}
    assert "waiting_room" in done.stdout and "| draw |" in done.stdout
