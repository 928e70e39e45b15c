"""Cold-start import time of app.py against its floor, as a ratio (median of fresh interpreters): a bare
Chalice app plus PynamoDB's models and PyJWT, the libraries every invocation needs. Target: <= 2x.

`python -m bench.coldstart` prints the figures and writes bench/results/coldstart.json.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.shop import write_result

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
# CPU time of the import (the import is CPU-bound; on a shared machine wall time mostly measures the
# neighbours), and wall time beside it.
_TIMED = (
    "import time; c, t = time.process_time(), time.perf_counter(); {}; "
    "print(time.process_time() - c, time.perf_counter() - t)"
)
BARE = _TIMED.format("from chalice import Chalice; Chalice(app_name='bare'); import pynamodb.models; import jwt")
TARGET_RATIO = 2.0
OURS = _TIMED.format("import app")
# What a Lambda has in its environment: the app must import without reaching any AWS endpoint.
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "cold",
    "AWS_SECRET_ACCESS_KEY": "cold",
    "LIVEDROP_STAGE": "prod",
    "LIVEDROP_USER_POOL_ID": "us-east-1_cold",
    "LIVEDROP_USER_POOL_CLIENT_ID": "cold",
    # Lambda's own variables: Powertools traces there (nothing may load the X-Ray SDK at import).
    "AWS_LAMBDA_FUNCTION_NAME": "livedrop-prod-api",
    "LAMBDA_TASK_ROOT": "/var/task",
}


def _median_seconds(code: str) -> tuple[float, float]:
    """Median CPU and wall seconds of `code` over RUNS fresh interpreters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEDROP_", "AWS_"))} | LAMBDA_ENV
    cpu, wall = [], []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout
        spent, elapsed = out.strip().splitlines()[-1].split()
        cpu.append(float(spent))
        wall.append(float(elapsed))
    return statistics.median(cpu), statistics.median(wall)


def run(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Measure both imports in fresh interpreters; returns and writes the figures."""
    bare, bare_wall = _median_seconds(BARE)
    ours, ours_wall = _median_seconds(OURS)
    result = {
        "benchmark": "coldstart",
        "runs": RUNS,
        "bare_import_cpu_ms": round(bare * 1000, 1),
        "app_import_cpu_ms": round(ours * 1000, 1),
        "bare_import_wall_ms": round(bare_wall * 1000, 1),
        "app_import_wall_ms": round(ours_wall * 1000, 1),
        "ratio": round(ours / bare, 2),
        "target_ratio": TARGET_RATIO,
        "summary": {
            "import app.py, CPU ms (wall ms)": f"{ours * 1000:.0f} ({ours_wall * 1000:.0f})",
            "import chalice + pynamodb + pyjwt, CPU ms (wall ms)": f"{bare * 1000:.0f} ({bare_wall * 1000:.0f})",
            "ratio of CPU times (target <= 2)": round(ours / bare, 2),
        },
    }
    return write_result(results_dir, "coldstart", result)


if __name__ == "__main__":
    run(ROOT / "bench" / "results")
