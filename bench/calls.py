"""Backend calls per operation, counted with a botocore hook on every client in the process.

- DynamoDB calls of one operation (order, warm read, follow, fan-out per 1,000 followers), with the
  dev stack's pumps stopped so only the operation itself is counted;
- every AWS call (all services) per order from placement to confirmation and the buyer's
  notification, with the whole pipeline running: the stream, queue and topic hops, the payment,
  the inbox row, live stock. Polls that return nothing (an idle event source) are counted apart:
  they depend on time, not on orders;
- the DynamoDB write units of the same path, per order (bench.write_units).

`python -m bench.calls` prints the figures and writes bench/results/calls.json.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.client import BaseClient

from bench.shop import account, live_drop, write_result
from bench.units import Meter
from bench.write_units import write_units
from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.delivery import consumers, notifications
from chalicelib.domain import follows
from chalicelib.schema import topology
from chalicelib.schema.messages import Envelope, EventType
from chalicelib.schema.models import Drop, Notification, Order
from devstack import iam
from devstack.pollers.wire import WireClient

FOLLOWERS = 1000
PIPELINE_ORDERS = 40
WRITE_UNIT_ORDERS = 40
PIPELINE_IN_FLIGHT = 8
# Event-source bookkeeping that runs on a clock whatever the load (Lambda's pollers do it for free).
_POLLING = {"DescribeStream", "GetShardIterator", "ListSchedules", "GetSchedule"}
# Functions that run on a clock whatever the load (the sweeper, the admissions tick, a drop's start):
# their calls are nobody's order's.
_CLOCK_FUNCTIONS = {"sweeper", "admissions", "drop_lifecycle"}
_uncounted = threading.local()


@contextmanager
def dynamodb_calls() -> Iterator[Counter[str]]:
    """Count DynamoDB API calls, by operation, made by any botocore client while the block runs."""
    counted: Counter[str] = Counter()
    lock = threading.Lock()

    def counting(original: Call, self: Any, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            with lock:
                counted[operation] += 1
        return original(self, operation, params)

    with _every_call(counting):
        yield counted


Call = Callable[[Any, str, dict[str, Any]], Any]


def _through(hook: Callable[[Call, Any, str, dict[str, Any]], Any], original: Call) -> Call:
    def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        return hook(original, client, operation, params)

    return call


@contextmanager
def _every_call(hook: Callable[[Call, Any, str, dict[str, Any]], Any]) -> Iterator[None]:
    """Route every AWS call of the process through `hook(original, client, operation, params)` while the
    block runs: botocore's, and the pumps' wire calls (devstack.pollers.wire), which skip botocore."""
    originals: list[tuple[type, str, Call]] = [
        (BaseClient, "_make_api_call", BaseClient._make_api_call),
        (WireClient, "call", WireClient.call),
    ]
    for owner, name, original in originals:
        setattr(owner, name, _through(hook, original))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@contextmanager
def backend_calls(meter: Meter | None = None) -> Iterator[tuple[Counter[str], Counter[str]]]:
    """Count every AWS call by `service:operation` while the block runs: (work, idle polls).

    A ReceiveMessage or GetRecords that brings nothing, and the pollers' shard and schedule
    listings, go to the idle counter; calls from a thread that set `_uncounted.on` are not counted.
    With a meter, the DynamoDB calls counted as work are also sized in capacity units (bench.units).
    """
    work: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    lock = threading.Lock()

    def counting(original: Call, self: Any, operation: str, params: dict[str, Any]) -> Any:
        result = original(self, operation, params)
        if getattr(_uncounted, "on", False) or iam.current_function() in _CLOCK_FUNCTIONS:
            return result
        key = f"{self.meta.service_model.service_name}:{operation}"
        empty = (operation == "ReceiveMessage" and not result.get("Messages")) or (
            operation == "GetRecords" and not result.get("Records")
        )
        with lock:
            (idle if empty or operation in _POLLING else work)[key] += 1
            function = iam.current_function()
            if function is not None and not empty and operation not in _POLLING:
                # A call a function's handler makes (not its event source's polls): part of its duration.
                work[f"function:{function}"] += 1
        if meter is not None and key.startswith("dynamodb:") and not empty:
            meter.record(operation, params, result)
        return result

    with _every_call(counting):
        yield work, idle


Scope = Callable[[str, dict[str, Any]], bool]


def _scope(drop_id: str, users: set[str]) -> Scope:
    """Whether a written item (table, key in DynamoDB's JSON) is this run's: not written by a function
    on a clock, and of the run's drop and people when its key names a drop or a user. Other tests'
    drops on the same stack (a waiting room still admitting, a retry coming back) are not counted."""

    def ours(_table: str, key: dict[str, Any]) -> bool:
        if iam.current_function() in _CLOCK_FUNCTIONS:
            return False
        drop = key.get("drop_id", {}).get("S")
        user = key.get("user_id", {}).get("S")
        return (drop is None or drop == drop_id) and (user is None or user in users)

    return ours


def _pipeline(
    stack: Any, session: requests.Session, base: str, orders: int, counting: Callable[[Scope], Any]
) -> tuple[Any, float]:
    """Place `orders` orders (PIPELINE_IN_FLIGHT at a time) and wait until each is confirmed and its buyer's
    inbox row is written, inside `counting(scope)` (scope: which writes are this run's); returns what the
    counter yielded and the seconds it took."""
    owner = account(session, base, "Pipeline owner")
    _, _, drop = live_drop(session, base, owner, stock=10 * orders)
    buyers = [account(session, base, f"Buyer {i}") for i in range(max(1, orders // 2))]
    # The push and inbox pipeline is measured on its own: the e-mail and Web Push channels (chalicelib.delivery.reach)
    # are what a buyer opts into, each with its own cost per message (docs/capacity.md).
    channels_off = {"email": {"order_confirmed": False}, "web_push": {"order_confirmed": False}}
    users = {session.get(f"{base}/me", headers=owner).json()["user_id"]}
    for buyer in buyers:
        me = session.get(f"{base}/me", headers=buyer).json()["user_id"]
        users.add(me)
        session.put(f"{base}/users/{me}/notification-settings", headers=buyer, json=channels_off)
    run = uuid.uuid4().hex[:8]
    _quiet(drop)  # the drop's own start and its announcement are not any order's

    def place(index: int) -> tuple[str, str]:
        headers = buyers[index % len(buyers)] | {"Idempotency-Key": f"pipeline-{run}-{index}"}
        body = {"drop_id": drop, "quantity": 1, "payment_token": "tok_visa"}
        placed = session.post(f"{base}/orders", headers=headers, json=body)
        assert placed.status_code == 201, placed.text
        return placed.json()["order_id"], placed.json()["user_id"]

    def settled(placed: list[tuple[str, str]]) -> bool:
        _uncounted.on = True
        try:
            if any(Order.get(oid, consistent_read=True).status != "confirmed" for oid, _ in placed):
                return False
            inbox: Counter[str] = Counter()
            for user in {user for _, user in placed}:
                for row in Notification.query(user, consistent_read=True):
                    if row.event_type == EventType.ORDER_CONFIRMED and row.order_id in dict(placed):
                        inbox[user] += 1
            return inbox == Counter(user for _, user in placed)
        finally:
            _uncounted.on = False

    with counting(_scope(drop, users)) as counted:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=PIPELINE_IN_FLIGHT) as pool:
            placed = list(pool.map(place, range(orders)))
        deadline = time.monotonic() + 120
        while not settled(placed):
            if time.monotonic() > deadline:
                raise RuntimeError("orders did not settle within 120 s")
            time.sleep(0.2)
        # Late stragglers of the same orders (a deferred live-stock push) belong to them too.
        time.sleep(2.0)
        seconds = time.monotonic() - started
    return counted, seconds


def _quiet(drop_id: str, timeout_s: float = 60.0) -> None:
    """Wait until the drop is live in storage and no queue has a message waiting, twice in a row (the
    drop's own start and its announcement are then done). Messages another test left retrying later
    (invisible for their backoff) do not count."""
    settings = get_settings()
    sqs = boto3.session.Session().client("sqs", region_name=settings.region, endpoint_url=settings.endpoint_url("sqs"))
    deadline, calm = time.monotonic() + timeout_s, 0
    _uncounted.on = True
    try:
        while calm < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the drop and its queues did not settle within {timeout_s} s")
            waiting = sum(
                int(
                    sqs.get_queue_attributes(
                        QueueUrl=settings.queue_url(spec.name), AttributeNames=["ApproximateNumberOfMessages"]
                    )["Attributes"]["ApproximateNumberOfMessages"]
                )
                for spec in topology.QUEUES
            )
            live = Drop.get(drop_id, consistent_read=True).status == "live"
            calm = calm + 1 if live and not waiting else 0
            time.sleep(0.5)
    finally:
        _uncounted.on = False


def pipeline_calls(stack: Any, session: requests.Session, base: str, orders: int = PIPELINE_ORDERS) -> dict[str, Any]:
    """Backend calls per order, placement to confirmation and the buyer's inbox row, pipeline running; with
    the capacity units of its DynamoDB calls (bench.units) and each function's invocations and durations."""
    meter = Meter()
    pools_before = {name: pool.stats() for name, pool in stack.pools.items()}
    (work, idle), seconds = _pipeline(stack, session, base, orders, lambda _scope: backend_calls(meter))
    by_function = {k.removeprefix("function:"): work.pop(k) for k in list(work) if k.startswith("function:")}
    total = sum(work.values())
    _uncounted.on = True
    try:
        dynamodb = aws.client("dynamodb")
        meter.settle(lambda operation, params: dynamodb._make_api_call(operation, params))
    finally:
        _uncounted.on = False
    functions = {}
    for name, pool in stack.pools.items():
        now, before = pool.stats(), pools_before.get(name, {})
        invocations = now["invocations"] - before.get("invocations", 0)
        if invocations:
            busy_ms = now["busy_ms"] - before.get("busy_ms", 0.0)
            cpu_ms = now["cpu_ms"] - before.get("cpu_ms", 0.0)
            functions[name] = {
                "invocations_per_order": round(invocations / orders, 3),
                "mean_ms": round(busy_ms / invocations, 1),
                "cpu_ms": round(cpu_ms / invocations, 1),
                "calls_per_invocation": round(
                    by_function.get(pool.function_name, by_function.get(name, 0)) / invocations, 2
                ),
            }
    return {
        "orders": orders,
        "in_flight": PIPELINE_IN_FLIGHT,
        "calls": dict(sorted(work.items())),
        "calls_per_order": round(total / orders, 2),
        "idle_polls": dict(sorted(idle.items())),
        "idle_polls_per_s": round(sum(idle.values()) / seconds, 1),
        "capacity": meter.summary(orders),
        "functions": functions,
    }


def pipeline_write_units(
    stack: Any, session: requests.Session, base: str, orders: int = WRITE_UNIT_ORDERS
) -> dict[str, Any]:
    """DynamoDB write units per order, placement to confirmation and the buyer's inbox row (bench.write_units:
    writes are serialised while counted, so this runs apart from the call count)."""
    written, _ = _pipeline(stack, session, base, orders, write_units)
    total = written.pop("total", 0)
    prefix = get_settings().table_prefix
    return {
        "orders": orders,
        "write_units_by_table": {name.removeprefix(prefix): n for name, n in sorted(written.items())},
        "write_units_per_order": round(total / orders, 2),
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Start a fresh dev stack, count, stop it; returns and writes the figures."""
    from devstack.stack import DevStack

    with DevStack(http_port=0, ws_port=0) as stack:
        base, session = stack.rest_url, requests.Session()
        pipeline = pipeline_calls(stack, session, base)
        written = pipeline_write_units(stack, session, base)

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
                "event_type": EventType.DROP_STARTED.value,
                "occurred_at": _iso(datetime.now(UTC)),
                "data": {"drop_id": drop, "creator_id": creator, "product_id": product},
            }
            with dynamodb_calls() as calls:
                consumers.fan_out(Envelope.parse(json.dumps(envelope)))
                while queued:
                    notifications.deliver_slice(queued.pop(0))
        finally:
            notifications.enqueue_deliveries = original_enqueue  # type: ignore[assignment]
        figures[f"fan-out of drop_started to {FOLLOWERS + 1} followers"] = dict(calls)

    result = {
        "benchmark": "calls",
        "operations": figures,
        "pipeline": pipeline,
        "pipeline_write_units": written,
        "summary": {
            **{name: sum(ops.values()) for name, ops in figures.items()},
            "backend calls per order, placement to confirmation and notification": pipeline["calls_per_order"],
            "DynamoDB write units per order, placement to confirmation and notification": written[
                "write_units_per_order"
            ],
            "DynamoDB write units per order (measured item sizes)": pipeline["capacity"]["write_units_per_order"],
        },
    }
    return write_result(results_dir, "calls", result)


def pipeline_only(calls_orders: int = PIPELINE_ORDERS, units_orders: int = WRITE_UNIT_ORDERS) -> dict[str, Any]:
    """The per-order figures alone (calls, then write units), on a fresh dev stack: nothing another test
    left running on a shared stack (a drop ending, a line still admitting) is counted as an order's."""
    from devstack.stack import DevStack

    with DevStack(http_port=0, ws_port=0) as stack:
        session = requests.Session()
        return {
            "pipeline": pipeline_calls(stack, session, stack.rest_url, calls_orders),
            "write_units": pipeline_write_units(stack, session, stack.rest_url, units_orders),
        }


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--pipeline"]:
        print(json.dumps(pipeline_only()))  # the last line of the output: the figures
    else:
        run(Path(__file__).resolve().parent / "results")
