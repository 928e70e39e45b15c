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
_TIMED = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
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


def _median_seconds(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEDROP_", "AWS_"))} | LAMBDA_ENV
    times = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return statistics.median(times)


def run(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Measure both imports in fresh interpreters; returns and writes the figures."""
    bare = _median_seconds(BARE)
    ours = _median_seconds(OURS)
    result = {
        "benchmark": "coldstart",
        "runs": RUNS,
        "bare_chalice_import_ms": round(bare * 1000, 1),
        "app_import_ms": round(ours * 1000, 1),
        "ratio": round(ours / bare, 2),
        "target_ratio": TARGET_RATIO,
        "summary": {
            "import app.py (ms)": round(ours * 1000, 1),
            "import chalice + pynamodb + pyjwt (ms)": round(bare * 1000, 1),
            "ratio (target <= 2)": round(ours / bare, 2),
        },
    }
    return write_result(results_dir, "coldstart", result)


if __name__ == "__main__":
    run(ROOT / "bench" / "results")
