"""DynamoDB calls per operation (order, warm read, follow, fan-out per 1,000 followers), counted with
a botocore hook on every client in the process, with the dev stack's pumps stopped so only the
operation itself is counted.

`python -m bench.calls` prints the figures and writes bench/results/calls.json.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from botocore.client import BaseClient

from bench.shop import account, live_drop, write_result

FOLLOWERS = 1000


@contextmanager
def dynamodb_calls() -> Iterator[Counter[str]]:
    """Count DynamoDB API calls, by operation, made by any botocore client while the block runs."""
    counted: Counter[str] = Counter()
    original: Callable[..., Any] = BaseClient._make_api_call
    lock = threading.Lock()

    def counting(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            with lock:
                counted[operation] += 1
        return original(self, operation, params)

    BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Start a fresh dev stack, count, stop it; returns and writes the figures."""
    from devstack.stack import DevStack

    with DevStack(http_port=0, ws_port=0) as stack:
        from chalicelib import follows, notifications
        from chalicelib.notifications import Envelope

        base, session = stack.rest_url, requests.Session()

        owner, fan = account(session, base, "Owner"), account(session, base, "Fan")
        creator, product, drop = live_drop(session, base, owner, stock=100)
        for user in (str(uuid.uuid4()) for _ in range(FOLLOWERS)):
            follows.follow(user, creator)
        for pump in stack.pumps:
            pump.stop()

        session.get(f"{base}/drops/{drop}")  # warms the drop (and its terms) in this "Lambda"
        figures: dict[str, dict[str, int]] = {}
        with dynamodb_calls() as calls:
            order = {"drop_id": drop, "quantity": 1, "payment_token": "tok_visa"}
            placed = session.post(f"{base}/orders", headers=fan | {"Idempotency-Key": "calls-1"}, json=order)
            assert placed.status_code == 201, placed.text
        figures["order (POST /orders)"] = dict(calls)
        with dynamodb_calls() as calls:
            assert session.get(f"{base}/drops/{drop}").status_code == 200
        figures["warm read (GET /drops/{id})"] = dict(calls)
        with dynamodb_calls() as calls:
            assert session.post(f"{base}/creators/{creator}/follow", headers=fan).status_code == 200
        figures["follow"] = dict(calls)

        queued: list[dict[str, Any]] = []
        original_enqueue = notifications.enqueue_deliveries
        notifications.enqueue_deliveries = lambda messages, delay_seconds=0: queued.extend(messages)  # type: ignore[assignment]
        try:
            envelope = {
                "event_id": str(uuid.uuid4()),
                "event_type": "drop_started",
                "occurred_at": _iso(datetime.now(UTC)),
                "data": {"drop_id": drop, "creator_id": creator, "product_id": product},
            }
            with dynamodb_calls() as calls:
                from chalicelib import consumers

                consumers.fan_out(Envelope.parse(json.dumps(envelope)))
                while queued:
                    notifications.deliver_slice(queued.pop(0))
        finally:
            notifications.enqueue_deliveries = original_enqueue  # type: ignore[assignment]
        figures[f"fan-out of drop_started to {FOLLOWERS + 1} followers"] = dict(calls)

    result = {
        "benchmark": "calls",
        "operations": figures,
        "summary": {name: sum(ops.values()) for name, ops in figures.items()},
    }
    return write_result(results_dir, "calls", result)


if __name__ == "__main__":
    run(Path(__file__).resolve().parent / "results")
