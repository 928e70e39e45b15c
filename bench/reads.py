"""Drop reads through the REST gateway: cached (warm in-process cache) and uncached, as reads/s,
with the embedded backend's raw GetItem/s measured in the same run as the limit.

`python -m bench.reads` prints the figures and writes bench/results/reads.json.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.load import hammer

DURATION = 5.0


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
        base = stack.rest_url
        session = requests.Session()
        email, password = "bench-reads@example.com", "Bench-reads-1"
        session.post(f"{base}/auth/signup", json={"email": email, "password": password, "name": "Bench"})
        token = session.post(f"{base}/auth/login", json={"email": email, "password": password}).json()["id_token"]
        auth = {"Authorization": f"Bearer {token}"}
        creator = session.post(f"{base}/creators", headers=auth, json={"name": "Bench"}).json()["creator_id"]
        product = session.post(
            f"{base}/creators/{creator}/products",
            headers=auth,
            json={"name": "Tee", "price_cents": 100, "currency": "USD"},
        ).json()["product_id"]
        now = datetime.now(UTC)
        drop = session.post(
            f"{base}/creators/{creator}/drops",
            headers=auth,
            json={
                "product_id": product,
                "start_time": _iso(now - timedelta(minutes=1)),
                "end_time": _iso(now + timedelta(hours=1)),
                "stock": 1000,
            },
        ).json()["drop_id"]
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
    out = Path(results_dir) / "reads.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    return result


if __name__ == "__main__":
    run(Path(__file__).resolve().parent / "results")
