"""Drop reads through the REST gateway: cached (warm in-process cache) and uncached, as reads/s,
with the embedded backend's raw GetItem/s measured in the same run as the limit.

`python -m bench.reads` prints the figures and writes bench/results/reads.json.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import requests

from bench.load import hammer
from bench.shop import account, live_drop, write_result

DURATION = 5.0


def _raw_get_item_rate(endpoint: str, table: str, key: dict[str, Any], duration: float) -> float:
    import boto3

    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    done = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        client.get_item(TableName=table, Key=key)
        done += 1
    return round(done / duration, 1)


def run(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Start a fresh dev stack, measure, stop it; returns and writes the figures."""
    from devstack.stack import DevStack

    with DevStack(http_port=0, ws_port=0) as stack:
        base, session = stack.rest_url, requests.Session()
        _, _, drop = live_drop(session, base, account(session, base, "Bench"), stock=1000)
        url = f"{base}/drops/{drop}"
        from chalicelib import catalog
        from chalicelib.models import Drop

        cached = hammer(url, DURATION)
        ttl = catalog.drop_cache.ttl
        catalog.drop_cache.ttl = 0  # every read goes to DynamoDB
        try:
            uncached = hammer(url, DURATION)
        finally:
            catalog.drop_cache.ttl = ttl
        raw = _raw_get_item_rate(stack.aws.endpoint, Drop.Meta.table_name, {"drop_id": {"S": drop}}, 3.0)
    result = {
        "benchmark": "reads",
        "cached": cached,
        "uncached": uncached,
        "raw_get_item_per_s": raw,
        "uncached_to_raw_ratio": round(uncached["per_s"] / raw, 2) if raw else None,
        "summary": {
            "cached GET /drops/{id} (reads/s)": cached["per_s"],
            "cached p99 (ms)": cached["p99_ms"],
            "uncached GET /drops/{id} (reads/s)": uncached["per_s"],
            "raw GetItem/s (limit)": raw,
            "uncached / raw": round(uncached["per_s"] / raw, 2) if raw else None,
        },
    }
    return write_result(results_dir, "reads", result)


if __name__ == "__main__":
    run(Path(__file__).resolve().parent / "results")
