"""POST /orders through a fresh dev stack: orders/s and latency with 32 concurrent buyers over one drop
of 20,000 units, zero oversell checked, against the embedded backend's raw TransactWriteItems/s with 32
clients measured in the same run. Targets: orders/s >= 0.5x raw, p99 <= 500 ms.

`python -m bench.orders` prints the figures and writes bench/results/orders.json. The dev stack runs
whole (stream and queue pumps included), so payments confirm orders while the buyers buy, as they would.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from bench.load import rush
from bench.profile import profiled
from chalicelib.core.statuses import RELEASED
from chalicelib.schema import stock
from chalicelib.schema.models import Drop, Order
from devstack.identity import client_kwargs

DROP_STOCK = 20_000
LEVELS = ((32, 2000),)  # (concurrent buyers, orders placed at that level)
TARGET_RATIO, TARGET_P99_MS = 0.5, 500
_RATIO_LABEL = f"ratio (target >= {TARGET_RATIO})"
RAW_SECONDS = 3.0
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _iso(delta_s: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=delta_s)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Client:
    def __init__(self, base_url: str, pool: int) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
        self.session.mount("http://", adapter)

    def post(self, path: str, body: Any, token: str | None = None, headers: dict[str, str] | None = None) -> Any:
        merged = dict(headers or {})
        if token:
            merged["Authorization"] = f"Bearer {token}"
        return self.session.post(self.base_url + path, json=body, headers=merged, timeout=60)

    def get(self, path: str, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.session.get(self.base_url + path, headers=headers, timeout=60)


def _sign_up(client: _Client, creator: bool = False) -> tuple[str, str]:
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = "Passw0rd!" + uuid.uuid4().hex[:6]
    user_id = client.post("/auth/signup", {"email": email, "password": password, "name": "Bench"}).json()["user_id"]
    token = client.post("/auth/login", {"email": email, "password": password}).json()["id_token"]
    if creator:
        made = client.post("/creators", {"name": "Bench studio", "profile": ""}, token)
        assert made.status_code == 201, made.text
    return user_id, token


def _make_drop(client: _Client) -> str:
    _, token = _sign_up(client, creator=True)
    creator_id = client.get("/me", token).json()["creator_id"]
    product = client.post(
        f"/creators/{creator_id}/products",
        {"name": "Bench tee", "description": "", "price_cents": 2500, "currency": "USD"},
        token,
    ).json()
    body = {"product_id": product["product_id"], "start_time": _iso(-1), "end_time": _iso(3600), "stock": DROP_STOCK}
    drop = client.post(f"/creators/{creator_id}/drops", body, token)
    assert drop.status_code == 201, drop.text
    return str(drop.json()["drop_id"])


def _raw_transactions(endpoint: str, threads: int) -> dict[str, Any]:
    """TransactWriteItems/s of the same backend, shaped like an order (2 conditional updates, 2 puts)."""
    ddb = boto3.session.Session().client(
        "dynamodb",
        **client_kwargs(endpoint),
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=threads),
    )
    table = f"bench-raw-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName=table, Item={"pk": {"S": "drop"}, "stock": {"N": "100000000"}})
    done = [0] * threads
    errors = [0] * threads
    stop = threading.Event()

    def worker(index: int) -> None:
        while not stop.is_set():
            order = uuid.uuid4().hex
            items = [
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "drop"}},
                        "UpdateExpression": "SET stock = stock - :q",
                        "ConditionExpression": "stock >= :q",
                        "ExpressionAttributeValues": {":q": {"N": "1"}},
                    }
                },
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": f"purchase#{index}"}},
                        "UpdateExpression": "SET quantity = if_not_exists(quantity, :z) + :q",
                        "ExpressionAttributeValues": {":q": {"N": "1"}, ":z": {"N": "0"}},
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": f"order#{order}"}, "payload": {"S": "x" * 200}}}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": f"key#{order}"}, "body": {"S": "x" * 300}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
            try:
                ddb.transact_write_items(TransactItems=items)
                done[index] += 1
            except Exception:
                errors[index] += 1

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    time.sleep(RAW_SECONDS)
    stop.set()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    ddb.delete_table(TableName=table)
    return {"threads": threads, "tx_per_s": round(sum(done) / wall, 1), "errors": sum(errors)}


def _oversell_check(drop_id: str) -> dict[str, Any]:

    drop = Drop.get(drop_id, consistent_read=True)
    stored = list(Order.scan(Order.drop_id == drop_id, consistent_read=True))
    held = sum(int(o.quantity) for o in stored if o.status not in RELEASED)
    # A drop this size is sharded (docs/sale-modes.md): its stock is the sum of its shards, not the drop row.
    shards = int(drop.stock_shards or 1)
    levels = [int(drop.stock)] if shards == 1 else list(stock.levels(drop_id, shards, fresh=True).values())
    left = sum(levels)
    return {
        "initial_stock": int(drop.initial_stock),
        "stock": left,
        "stock_shards": shards,
        "orders_stored": len(stored),
        "units_held": held,
        "invariant_holds": min(levels) >= 0 and left + held == int(drop.initial_stock),
    }


def run(results_dir: Path | str = RESULTS_DIR) -> dict[str, Any]:
    """Run the benchmark on a fresh dev stack; returns the figures and writes orders.json to `results_dir`."""
    from devstack.stack import DevStack

    # 32 buyers place about 60 orders each within seconds: far past the per-user rate limit (20 per 10 s,
    # docs/sale-modes.md). This measures the order path, so the limit is raised for the run.
    os.environ.setdefault("LIVEDROP_ORDER_RATE_LIMIT", "100000")
    stack = DevStack(http_port=0, ws_port=0, stage="bench")
    stack.start()
    # Outside Lambda, Powertools prints an EMF line to stdout every hundred data points; not measured here.
    quiet = contextlib.redirect_stdout(io.StringIO())
    quiet.__enter__()
    try:
        client = _Client(stack.rest_url, pool=max(n for n, _ in LEVELS) + 8)
        drop_id = _make_drop(client)
        with ThreadPoolExecutor(max_workers=8) as pool:
            tokens = [t for _, t in pool.map(lambda _: _sign_up(client), range(max(n for n, _ in LEVELS)))]
        levels = []
        for buyers, total in LEVELS:
            # Raw first, with the pipeline idle: the backend's own limit on this machine, this minute.
            raw = _raw_transactions(stack.aws.endpoint, buyers)
            with profiled(f"orders-{buyers}", seconds=120) as profile:
                measured = rush(stack.rest_url, drop_id, tokens[:buyers], total)
            measured["raw"] = raw
            measured["profile"] = profile
            measured["ratio_to_raw"] = round(measured["orders_per_s"] / max(measured["raw"]["tx_per_s"], 0.1), 2)
            levels.append(measured)
        sold = sum(level["statuses"].get("201", 0) for level in levels)
        check = _oversell_check(drop_id)
        check["orders_201"] = sold
        # Every 201 is exactly one stored order, and nothing was sold that the stock did not hold.
        check["zero_oversell"] = check["invariant_holds"] and check["orders_stored"] == sold
        result = {
            "benchmark": "orders",
            "drop_stock": DROP_STOCK,
            "levels": levels,
            "check": check,
            "targets": {"ratio_to_raw": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
            "summary": {
                **{
                    f"{level['buyers']} buyers: orders/s, p50 / p99 ms": (
                        f"{level['orders_per_s']}, {level['p50_ms']} / {level['p99_ms']}"
                    )
                    for level in levels
                },
                **{
                    f"{level['buyers']} buyers: raw TransactWriteItems/s (32 clients), {_RATIO_LABEL}": (
                        f"{level['raw']['tx_per_s']}, {level['ratio_to_raw']}"
                    )
                    for level in levels
                },
                "zero oversell": check["zero_oversell"],
            },
        }
    finally:
        quiet.__exit__(None, None, None)
        stack.stop()
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "orders.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
