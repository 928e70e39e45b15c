"""One hot drop, 1 stock shard against 8, under the same load: orders/s and retries per order.

The embedded AWS serves every write behind one lock, so by itself it never shows what limits a hot
drop in AWS: a single item takes about 1,000 WCU/s, and a transactional write costs 2 WCU per item, so
one stock item serves about 500 orders/s. This benchmark puts that limit back, scaled down so the dev
stack can reach it: every TransactWriteItems that writes a stock item (a Drops row or a StockShard) takes
a token from that item's bucket (ITEM_TX_PER_S per second); without one, DynamoDB's answer for a busy
item comes back (TransactionCanceledException, reason TransactionConflict), and the app retries as it
would in AWS. The figures are checked against the capacity model of docs/sale-modes.md: at most
shards x ITEM_TX_PER_S orders/s here, shards x 500 in AWS.

`python -m bench.hot_drop` prints the figures and writes bench/results/hot_drop.json.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.shop import account, write_result
from chalicelib.core.config import get_settings
from chalicelib.core.errors import LiveDropError
from chalicelib.domain import orders
from chalicelib.schema import db
from chalicelib.schema.commands import NewOrder

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ITEM_TX_PER_S = 20.0  # the per-item limit scaled below what the dev stack itself serves (AWS: about 500)
AWS_ITEM_TX_PER_S = 500
SHARD_COUNTS = (1, 8)
BUYERS = 16  # concurrent buyers, the same for every shard count
SECONDS = 6.0  # how long each shard count is loaded
STOCK = 40_000


class HotItemLimiter:
    """A token bucket per stock item on TransactWriteItems (a botocore before-call hook): an
    attempt that finds its item's bucket empty is cancelled with TransactionConflict."""

    def __init__(self, tables: tuple[str, ...], per_second: float) -> None:
        self.tables = tables
        self.per_second = per_second
        self.burst = max(1.0, per_second / 10)
        self.conflicts = 0
        self.attempts = 0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _take(self, key: str) -> bool:
        now = time.monotonic()
        tokens, since = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - since) * self.per_second)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def __call__(self, params: dict[str, Any], **_: Any) -> Any:
        # before-call sees the serialized request: the DynamoDB JSON body.
        items = json.loads(params.get("body") or b"{}").get("TransactItems") or []
        reasons: list[dict[str, str]] = []
        busy = False
        with self._lock:
            self.attempts += 1
            for item in items:
                update = item.get("Update") or {}
                if update.get("TableName", "").endswith(self.tables) and not self._take(repr(update.get("Key"))):
                    busy = True
                    reasons.append({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                else:
                    reasons.append({"Code": "None"})
            if busy:
                self.conflicts += 1
        if not busy:
            return None
        error = {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled (hot item)"},
            "CancellationReasons": reasons,
        }
        return _HttpStatus(400), error


class _HttpStatus:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _drop(session: requests.Session, base: str, owner: dict[str, str], product: str, creator: str, shards: int) -> str:
    now = datetime.now(UTC)
    body = {
        "product_id": product,
        "start_time": _iso(now - timedelta(minutes=1)),
        "end_time": _iso(now + timedelta(hours=1)),
        "stock": STOCK,
        "stock_shards": shards,
    }
    response = session.post(f"{base}/creators/{creator}/drops", headers=owner, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["drop_id"])


def _load(drop_id: str, limiter: HotItemLimiter) -> dict[str, Any]:

    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS
    before_conflicts, before_attempts = limiter.conflicts, limiter.attempts

    new = NewOrder(drop_id=drop_id, quantity=1, payment_token="tok_bench")

    def buyer(_: int) -> None:
        while time.monotonic() < deadline:
            try:
                orders.place_order(f"u_{uuid.uuid4().hex}", "k", new)
                code = "201"  # what POST /orders answers for a placed order
            except LiveDropError as error:
                code = error.code
            with lock:
                outcomes[code] = outcomes.get(code, 0) + 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=BUYERS) as pool:
        list(pool.map(buyer, range(BUYERS)))
    elapsed = time.monotonic() - started
    placed = outcomes.get("201", 0)
    requests_made = sum(outcomes.values())
    conflicts = limiter.conflicts - before_conflicts
    return {
        "orders_per_s": round(placed / elapsed, 1),
        "requests": requests_made,
        "outcomes": outcomes,
        "transactions": limiter.attempts - before_attempts,
        "conflicts": conflicts,
        "retries_per_order": round(conflicts / max(requests_made, 1), 2),
    }


def run(results_dir: Path | str = RESULTS_DIR) -> dict[str, Any]:
    """Load one drop per shard count on a fresh dev stack; returns the figures and writes hot_drop.json."""
    from devstack.stack import DevStack

    stack = DevStack(http_port=0, ws_port=0, stage="bench")
    stack.start()
    quiet = contextlib.redirect_stdout(io.StringIO())  # Powertools' EMF lines are not measured here
    quiet.__enter__()
    try:
        prefix = get_settings().table_prefix
        limiter = HotItemLimiter((f"{prefix}Drops", f"{prefix}StockShards"), ITEM_TX_PER_S)
        client = db.connection().client
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", limiter, unique_id="hot-items")
        session = requests.Session()
        base = stack.rest_url
        owner = account(session, base, "Bench maker")
        creator = session.post(f"{base}/creators", headers=owner, json={"name": "Bench"}).json()["creator_id"]
        product = session.post(
            f"{base}/creators/{creator}/products",
            headers=owner,
            json={"name": "Hot tee", "price_cents": 100, "currency": "USD"},
        ).json()["product_id"]
        levels = []
        for shards in SHARD_COUNTS:
            measured = _load(_drop(session, base, owner, product, creator, shards), limiter)
            measured["shards"] = shards
            measured["model_max_orders_per_s"] = shards * ITEM_TX_PER_S
            measured["within_model"] = measured["orders_per_s"] <= shards * ITEM_TX_PER_S * 1.15
            measured["aws_model_orders_per_s"] = shards * AWS_ITEM_TX_PER_S
            levels.append(measured)
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="hot-items")
    finally:
        quiet.__exit__(None, None, None)
        stack.stop()
    one, eight = levels
    result = {
        "benchmark": "hot_drop",
        "item_tx_per_s": ITEM_TX_PER_S,
        "buyers": BUYERS,
        "seconds_per_level": SECONDS,
        "levels": levels,
        "summary": {
            f"{level['shards']} shard(s): orders/s, retries/order, model max": (
                f"{level['orders_per_s']}, {level['retries_per_order']}, {level['model_max_orders_per_s']:.0f}"
            )
            for level in levels
        }
        | {
            "8 shards / 1 shard": round(eight["orders_per_s"] / max(one["orders_per_s"], 0.1), 2),
            "within the capacity model": all(level["within_model"] for level in levels),
        },
    }
    return write_result(results_dir, "hot_drop", result)


if __name__ == "__main__":
    run()
