"""The back office keeps up: charges of a batch in parallel (bounded), per-record failures, retry budgets
that wait (seconds for a transient card failure, minutes otherwise), a sweeper that goes on past an
item it cannot write, and live stock coalesced and sliced on its own queue."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist

from chalicelib.core.statuses import OrderStatus
from chalicelib.delivery import consumers, live_stock, notifications, payments
from chalicelib.domain import catalog, orders, settlement
from chalicelib.schema import models, retries, topology
from chalicelib.schema.db import now_ms
from chalicelib.schema.messages import DeliverKind, Envelope, EventType, PoisonMessageError
from chalicelib.schema.models import Drop, Order, ProcessedEvent, Purchase, Subscription
from chalicelib.wiring import bootstrap
from devstack.lambda_events.sqs import sqs_record


class ConcurrencyRecordingFakeGateway(payments.FakePaymentGateway):
    """The fake provider, whose charges each wait at a barrier of `parties` charges (so charges made one
    after another fail the barrier's wait) and which records how many were in flight at once."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=20)
        self.in_flight = 0
        self.most_in_flight = 0
        self._count_lock = threading.Lock()

    def charge(self, order_id: str, amount_cents: int, currency: str, token: str, idempotency_key: str) -> Any:
        with self._count_lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.barrier.wait()
            return super().charge(order_id, amount_cents, currency, token, idempotency_key)
        finally:
            with self._count_lock:
                self.in_flight -= 1


def pending_order(token: str = "tok_visa", expires_in_ms: int = 600_000) -> str:
    """A drop with stock 10 and one pending order of 1 unit on it, stored as placing an order leaves them."""
    now = now_ms()
    drop_id, order_id, user_id = f"dr_{uuid.uuid4().hex[:10]}", f"or_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    Drop(
        drop_id=drop_id,
        product_id="pr_unit",
        creator_id="cr_unit",
        start_time=now - 60_000,
        end_time=now + 3_600_000,
        initial_stock=10,
        stock=9,
        status="live",
        price_cents=100,
        currency="USD",
        created_at=now,
    ).save()
    Purchase(purchase_id=orders.purchase_id(drop_id, user_id), quantity=1).save()
    Order(
        order_id=order_id,
        user_id=user_id,
        drop_id=drop_id,
        quantity=1,
        amount_cents=100,
        currency="USD",
        status=OrderStatus.PENDING_PAYMENT,
        idempotency_key=uuid.uuid4().hex,
        request_hash="h",
        payment_token=token,
        pending_bucket=orders.pending_bucket(order_id),
        created_at=now,
        expires_at=now + expires_in_ms,
    ).save()
    return order_id


PLACED_AT_MS = 1_780_000_000_000


def placed_event(order_id: str) -> str:
    """The order_placed message of an order (the same text every time, as a redelivery carries)."""
    return Envelope.new(f"ev_{order_id}", EventType.ORDER_PLACED, PLACED_AT_MS, {"order_id": order_id}).serialize()


def queue_url() -> str:
    return bootstrap.settings().queue_url(topology.PAYMENTS.name)


def received_batch(bodies: list[str]) -> dict[str, Any]:
    """The bodies sent to the payments queue and received back, as Lambda's SQS event (real receipt handles)."""
    sqs = bootstrap.client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url(), MessageBody=body)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url(), AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    wanted, messages = set(bodies), []
    deadline = time.monotonic() + 10
    while len(messages) < len(bodies) and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
        messages += [m for m in got.get("Messages", []) if m["Body"] in wanted]
    assert len(messages) == len(bodies)
    return {"Records": [sqs_record(m, arn) for m in messages]}


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {failure["itemIdentifier"] for failure in response["batchItemFailures"]}


def test_a_batch_is_charged_side_by_side_and_every_order_confirmed() -> None:
    ids = [pending_order() for _ in range(payments.MAX_PARALLEL_CHARGES)]
    fake = ConcurrencyRecordingFakeGateway(parties=len(ids))
    with bootstrap.override(payment_gateway=fake):
        response = payments.handle_payment_messages(received_batch([placed_event(i) for i in ids]), None)
    # Ten charges met at one barrier: they were in flight together, not one after another.
    assert response["batchItemFailures"] == []
    assert fake.most_in_flight == len(ids)
    assert sorted(fake.charged) == sorted(ids)
    assert {orders.load_order(i).status for i in ids} == {OrderStatus.CONFIRMED}


def test_charges_in_flight_are_bounded_by_max_parallel_charges() -> None:
    ids = [pending_order() for _ in range(payments.MAX_PARALLEL_CHARGES + 3)]
    fake = ConcurrencyRecordingFakeGateway(parties=1)
    with bootstrap.override(payment_gateway=fake):
        records = [sqs_record({"MessageId": i, "ReceiptHandle": i, "Body": placed_event(i)}, "arn") for i in ids]
        response = payments.handle_payment_messages({"Records": records}, None)
    assert response["batchItemFailures"] == []
    assert fake.most_in_flight <= payments.MAX_PARALLEL_CHARGES


def test_failures_are_reported_per_record_and_a_transient_one_comes_back_within_seconds() -> None:
    good, flaky = pending_order(), pending_order("tok_processingError")
    batch = received_batch([placed_event(good), placed_event(flaky), "not an envelope"])
    by_body = {record["body"]: record["messageId"] for record in batch["Records"]}
    with bootstrap.override(payment_gateway=payments.FakePaymentGateway()):
        response = payments.handle_payment_messages(batch, None)
    assert failed_ids(response) == {by_body[placed_event(flaky)], by_body["not an envelope"]}
    assert orders.load_order(good).status == OrderStatus.CONFIRMED
    # The buyer is told what is happening while the provider's error is retried.
    view = orders.get_order(orders.load_order(flaky).user_id, flaky)
    assert view["status"] == OrderStatus.PENDING_PAYMENT and view["payment_retrying"] is True
    assert "payment_retrying" not in orders.get_order(orders.load_order(good).user_id, good)
    # The queue's visibility timeout is minutes; the transient failure is back within seconds.
    assert topology.PAYMENTS.visibility_timeout >= 60
    sqs, back = bootstrap.client("sqs"), None
    deadline = time.monotonic() + retries.TRANSIENT_CHARGE_DELAYS[0] + 10
    while back is None and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10, WaitTimeSeconds=1)
        back = next((m for m in got.get("Messages", []) if m["Body"] == placed_event(flaky)), None)
    assert back is not None
    sqs.delete_message(QueueUrl=queue_url(), ReceiptHandle=back["ReceiptHandle"])


def test_every_queue_allows_ten_receives_and_its_retries_are_spread_over_minutes() -> None:
    for spec in topology.QUEUES:
        assert spec.max_receive_count >= 10, spec.name
    for delays in (retries.RETRY_DELAYS, retries.TRANSIENT_CHARGE_DELAYS):
        # One delay per retry the budget allows, never shrinking.
        assert len(delays) == topology.MAX_RECEIVES - 1
        assert list(delays) == sorted(delays)
    assert sum(retries.RETRY_DELAYS) >= 30 * 60  # an outage of half an hour reaches no DLQ
    assert retries.retry_delay(1, RuntimeError()) == retries.RETRY_DELAYS[0]
    assert retries.retry_delay(99, RuntimeError()) == retries.RETRY_DELAYS[-1]
    transient = payments.PaymentProviderError("processing error")
    assert [retries.retry_delay(n, transient) for n in (1, 2, 3)] == list(retries.TRANSIENT_CHARGE_DELAYS[:3])
    assert retries.TRANSIENT_CHARGE_DELAYS[0] <= 2
    # A poison message comes back at once: it reaches its DLQ in seconds, not after half an hour.
    assert retries.retry_delay(1, PoisonMessageError("never")) == 0


@contextmanager
def throttled_writes_of(order_id: str) -> Iterator[list[str]]:
    """DynamoDB refuses every transaction that writes `order_id`, as a throttled partition does."""
    refused: list[str] = []
    original = BaseClient._make_api_call

    def throttling(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "TransactWriteItems" and order_id in json.dumps(params):
            refused.append(order_id)
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "throttled (injected)"}
            raise ClientError({"Error": error}, operation)
        return original(self, operation, params)

    BaseClient._make_api_call = throttling  # type: ignore[method-assign]
    try:
        yield refused
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def test_the_sweeper_goes_on_past_a_throttled_order_and_expires_it_next_run() -> None:
    overdue = [pending_order(expires_in_ms=-1_000) for _ in range(3)]
    stuck = overdue[1]
    with throttled_writes_of(stuck) as refused:
        settlement.expire_overdue()
    assert refused, "the throttled order was tried"
    assert [orders.load_order(i).status for i in overdue] == [
        OrderStatus.EXPIRED,
        OrderStatus.PENDING_PAYMENT,
        OrderStatus.EXPIRED,
    ]
    settlement.expire_overdue()  # the next run, unthrottled
    assert orders.load_order(stuck).status == OrderStatus.EXPIRED
    assert Drop.get(orders.load_order(stuck).drop_id).stock == 10  # its unit is back, exactly once


@pytest.mark.parametrize("token", ["tok_visa", "tok_chargeDeclined"])
def test_a_redelivered_placed_event_charges_and_settles_once(token: str) -> None:
    order_id = pending_order(token)
    fake = payments.FakePaymentGateway()
    with bootstrap.override(payment_gateway=fake):
        for _ in range(2):
            records = [sqs_record({"MessageId": "m", "ReceiptHandle": "r", "Body": placed_event(order_id)}, "arn")]
            assert payments.handle_payment_messages({"Records": records}, None)["batchItemFailures"] == []
    assert fake.charged in ([order_id], [])
    assert Drop.get(orders.load_order(order_id).drop_id).stock == (9 if token == "tok_visa" else 10)


# --- live stock on its own queue -------------------------------------------------------------------
class IdRecordingPusher:
    """A pusher that keeps which connections each frame was pushed to instead of posting it."""

    def __init__(self) -> None:
        self.pushes: list[tuple[list[str], dict]] = []
        self._lock = threading.Lock()

    def push(self, connection_ids, frame: dict, occurred_at_ms: int | None = None) -> None:
        with self._lock:
            self.pushes.append((list(connection_ids), frame))


def stock_event(drop_id: str, stock: int, at_ms: int) -> Envelope:
    return Envelope.new(uuid.uuid4().hex, EventType.STOCK_CHANGED, at_ms, {"drop_id": drop_id, "stock": stock})


def as_records(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [sqs_record({"MessageId": uuid.uuid4().hex, "ReceiptHandle": "r", "Body": b}, "arn") for b in bodies]
    }


def watchers(drop_id: str, count: int) -> list[str]:
    ids = [f"c_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    with Subscription.batch_write() as batch:
        for connection_id in ids:
            batch.save(Subscription(drop_id=drop_id, connection_id=connection_id))
    return ids


def test_a_drop_nobody_watches_costs_no_live_stock_write() -> None:
    drop_id, pusher = f"dr_{uuid.uuid4().hex[:10]}", IdRecordingPusher()
    with bootstrap.override(pusher=pusher):
        live_stock.stock_changed(stock_event(drop_id, 3, now_ms()))
    assert pusher.pushes == []
    with pytest.raises(DoesNotExist):
        ProcessedEvent.get(f"stock#{drop_id}")


def test_of_a_batch_only_the_newest_change_of_a_drop_is_pushed() -> None:
    drop_id, pusher = f"dr_{uuid.uuid4().hex[:10]}", IdRecordingPusher()
    watchers(drop_id, 2)
    now = now_ms()
    events = [stock_event(drop_id, stock, now - stock) for stock in (3, 1, 2)]  # stock 1 is the newest
    with bootstrap.override(pusher=pusher):
        response = live_stock.handle_batch(as_records([e.serialize() for e in events]), None)
    assert response["batchItemFailures"] == []
    assert [frame["event_id"] for _, frame in pusher.pushes] == [events[1].event_id]


def _queued_slices(queue: topology.QueueSpec, kind: str, wanted: Any, count: int) -> list[str]:
    """Take `count` messages of `kind` for which `wanted(body)` holds off `queue` (bounded wait)."""
    sqs, url = bootstrap.client("sqs"), bootstrap.settings().queue_url(queue.name)
    found: list[str] = []
    deadline = time.monotonic() + 10
    while len(found) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("kind") == kind and wanted(body):
                found.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_a_large_audience_is_pushed_in_slices_each_by_its_own_invocation(monkeypatch) -> None:
    monkeypatch.setattr(live_stock, "PUSH_SLICE", 3)
    drop_id, pusher = f"dr_{uuid.uuid4().hex[:10]}", IdRecordingPusher()
    audience = watchers(drop_id, 7)
    with bootstrap.override(pusher=pusher):
        live_stock.handle_batch(as_records([stock_event(drop_id, 4, now_ms()).serialize()]), None)
        assert [len(ids) for ids, _ in pusher.pushes] == [3]  # the first slice at once, the rest queued

        def ours(body: dict[str, Any]) -> bool:
            return bool(body["frame"]["data"]["drop_id"] == drop_id)

        slices = _queued_slices(topology.LIVE_STOCK, DeliverKind.STOCK_SLICE.value, ours, 2)
        for body in slices:  # each slice is a message of its own: an invocation of its own in AWS
            assert live_stock.handle_batch(as_records([body]), None)["batchItemFailures"] == []
    pushed = [connection_id for ids, _ in pusher.pushes for connection_id in ids]
    assert sorted(pushed) == sorted(audience) and max(len(ids) for ids, _ in pusher.pushes) <= 3
    assert len({json.dumps(frame, sort_keys=True) for _, frame in pusher.pushes}) == 1


def test_a_drop_events_large_audience_is_pushed_in_slices_each_once(monkeypatch) -> None:
    monkeypatch.setattr(notifications, "DROP_PUSH_SLICE", 3)
    drop_id, pusher = f"dr_{uuid.uuid4().hex[:10]}", IdRecordingPusher()
    audience = watchers(drop_id, 8)
    data = {"drop_id": drop_id, "creator_id": f"cr_{uuid.uuid4().hex[:10]}"}
    started = Envelope.new(uuid.uuid4().hex, EventType.DROP_STARTED, now_ms(), data)
    with bootstrap.override(pusher=pusher):
        assert consumers.handle_notify_batch(as_records([started.serialize()]), None)["batchItemFailures"] == []
        assert [len(ids) for ids, _ in pusher.pushes] == [3]  # the first slice at once, the rest on push_slices
        kind = DeliverKind.DROP_PUSH_SLICE.value
        slices = _queued_slices(
            topology.PUSH_SLICES, kind, lambda body: body["event"]["event_id"] == started.event_id, 2
        )
        assert len(slices) == 2
        # Each slice is an invocation of its own; a slice delivered twice (a retry, SQS's at-least-once) or a
        # second copy in the same batch is posted once.
        for body in [slices[0], *slices, slices[1]]:
            assert consumers.handle_notify_batch(as_records([body, body]), None)["batchItemFailures"] == []
        broken = json.dumps({**json.loads(slices[0]), "ids": "c_1"})
        failed = consumers.handle_notify_batch(as_records([broken]), None)["batchItemFailures"]
        assert len(failed) == 1  # poison: its record fails alone, and the queue's redrive takes it to the DLQ
    pushed = [connection_id for ids, _ in pusher.pushes for connection_id in ids]
    assert sorted(pushed) == sorted(audience) and max(len(ids) for ids, _ in pusher.pushes) <= 3
    assert {frame["event_id"] for _, frame in pusher.pushes} == {started.event_id}


def test_a_fanout_batch_sets_its_retries_on_the_queue_it_came_from() -> None:
    settings = bootstrap.settings()

    def batch_of(queue: topology.QueueSpec) -> list[dict[str, Any]]:
        arn = f"arn:aws:sqs:{settings.region}:{settings.account_id}:{settings.table_prefix}{queue.name}"
        return [sqs_record({"MessageId": "m", "ReceiptHandle": "r", "Body": "{}"}, arn)]

    assert consumers._source_queue(batch_of(topology.PUSH_SLICES)) == topology.PUSH_SLICES
    assert consumers._source_queue(batch_of(topology.NOTIFY)) == topology.NOTIFY
    assert consumers._source_queue([]) == topology.NOTIFY


def test_drops_indexes_project_everything_but_what_every_order_changes() -> None:
    indexed = set(models.DROP_INDEXED_ATTRIBUTES) | {"drop_id", "status", "start_time", "creator_id"}
    assert indexed | set(models.DROP_HOT_ATTRIBUTES) == set(Drop.get_attributes())
    assert not indexed & set(models.DROP_HOT_ATTRIBUTES)
    # The status index carries the creator too (the key of the other index, not its own).
    assert set(Drop.by_status.Meta.projection.non_key_attributes) == set(models.DROP_INDEXED_ATTRIBUTES) | {
        "creator_id"
    }
    assert set(Drop.by_creator.Meta.projection.non_key_attributes) == set(models.DROP_INDEXED_ATTRIBUTES)
    # The decrement of an order touches only attributes no index projects.
    assert {"stock", "orders_placed"} <= set(models.DROP_HOT_ATTRIBUTES)


def test_a_drop_read_through_an_index_shows_its_current_stock() -> None:
    order_id = pending_order()
    drop = Drop.get(orders.load_order(order_id).drop_id)
    from_index = next(d for d in Drop.by_status.query("live") if d.drop_id == drop.drop_id)
    assert from_index.stock is None  # not projected
    (completed,) = catalog.with_hot_fields([from_index])
    assert completed.stock == 9 == drop.stock
