"""A cold start loads nothing heavy, and Lambda still traces every call (the invocations' metrics and
correlation ids: tests/api/test_observability.py)."""

from __future__ import annotations

from bench.coldstart import LAMBDA_ENV

# The environment of a deployed function, as the cold-start bench measures it.
_LAMBDA_ENV = LAMBDA_ENV
_PROBE = """
import sys, app
print("loaded", "aws_xray_sdk" in sys.modules, "boto3" in sys.modules)
from chalicelib.core import observability
print("disabled", observability.tracing_disabled())
if not observability.tracing_disabled():
    observability.tracer.get()
    from aws_xray_sdk.core import patcher
    print("patched", "botocore" in patcher._PATCHED_MODULES)
"""


def _probe(env: dict[str, str]) -> list[str]:
    import os
    import subprocess
    import sys
    from pathlib import Path

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEDROP_", "AWS_", "POWERTOOLS_"))}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=root, env=clean | env, capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.startswith(("loaded", "disabled", "patched"))]


def test_importing_the_app_loads_neither_the_xray_sdk_nor_boto3_and_lambda_still_traces_every_call() -> None:
    # In Lambda with active tracing: nothing heavy at import, and botocore patched once an invocation traces.
    assert _probe(_LAMBDA_ENV) == ["loaded False False", "disabled False", "patched True"]
    # Tracing off (the dev stack, or POWERTOOLS_TRACE_DISABLED): the X-Ray SDK is never loaded.
    assert _probe(_LAMBDA_ENV | {"POWERTOOLS_TRACE_DISABLED": "1"}) == ["loaded False False", "disabled True"]
