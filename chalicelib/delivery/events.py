"""Domain events from the outbox: DynamoDB Stream records of Drops and Orders become envelopes
(chalicelib.schema.messages.Envelope) published to the events topic (attribute event_type).

An event id is derived from the stream record's eventID and the event type, so a redelivered record
publishes the same ids and every consumer can drop what it has already seen.

This handler only derives and publishes: it writes no table. A drop's status following its stock
(live <-> sold_out) is the domain's (chalicelib.domain.scheduling), moved by the consumer of the
published stock_changed and by the settlement that returns a reservation's units.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from chalicelib.core import coalescing
from chalicelib.core.statuses import DropStatus, OrderStatus
from chalicelib.core.validation import format_time
from chalicelib.schema import messages, stock
from chalicelib.schema.db import now_ms
from chalicelib.schema.messages import Envelope, EventType

logger = logging.getLogger("livedrop.events")
_EVENT_NAMESPACE = uuid.UUID("6f1c2b1e-5d8a-4c1e-9a57-4c1d0e0b7a11")
ORDER_STATUS_EVENTS = {
    OrderStatus.CONFIRMED: EventType.ORDER_CONFIRMED,
    OrderStatus.PAYMENT_FAILED: EventType.ORDER_FAILED,
    OrderStatus.EXPIRED: EventType.ORDER_EXPIRED,
}
_Derived = list[tuple[EventType, dict[str, Any]]]


def event_id_for(record_id: str, event_type: str) -> str:
    """The deterministic id of `event_type` derived from stream record `record_id`."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{record_id}/{event_type}"))


@lru_cache(maxsize=1)
def _deserializer() -> Any:
    # boto3 only when a stream batch needs it: importing it costs every cold start a quarter second.
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def _image(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    deserialize = _deserializer().deserialize
    return {name: _plain(deserialize(value)) for name, value in (raw or {}).items()}


def _plain(value: Any) -> Any:
    # Stream numbers arrive as Decimals; every number in these tables is an integer.
    if hasattr(value, "as_integer_ratio") and not isinstance(value, bool | int):
        return int(value)
    return value


def envelopes_for(record: Mapping[str, Any]) -> list[Envelope]:
    """The domain events one DynamoDB Stream record (Lambda's event shape) stands for."""
    change = record.get("dynamodb") or {}
    keys = set((change.get("Keys") or {}).keys())
    old, new = _image(change.get("OldImage")), _image(change.get("NewImage"))
    name = record.get("eventName")
    if "order_id" in keys:
        derived = _order_events(name, old, new)
    elif keys == {"drop_id"}:
        derived = _drop_events(name, old, new)
    elif keys == {"shard_id"}:
        derived = _shard_events(name, old, new)
    else:
        derived = []
    created = change.get("ApproximateCreationDateTime")
    # Lambda's stream records always carry their time; without one, the time the handler saw it.
    occurred_at_ms = int(float(created) * 1000) if created is not None else now_ms()
    record_id = str(record.get("eventID") or change.get("SequenceNumber"))
    return [Envelope.new(event_id_for(record_id, kind), kind, occurred_at_ms, data) for kind, data in derived]


def _order_events(name: Any, old: dict[str, Any], new: dict[str, Any]) -> _Derived:
    if name == "INSERT":
        return [
            (
                EventType.ORDER_PLACED,
                {
                    "order_id": new.get("order_id"),
                    "user_id": new.get("user_id"),
                    "drop_id": new.get("drop_id"),
                    "quantity": new.get("quantity"),
                    "amount_cents": new.get("amount_cents"),
                    "currency": new.get("currency"),
                },
            )
        ]
    status = new.get("status")
    if name == "MODIFY" and status != old.get("status") and status in ORDER_STATUS_EVENTS:
        data = {"order_id": new.get("order_id"), "user_id": new.get("user_id"), "drop_id": new.get("drop_id")}
        return [(ORDER_STATUS_EVENTS[status], data)]
    return []


def _drop_events(name: Any, old: dict[str, Any], new: dict[str, Any]) -> _Derived:
    if name not in ("INSERT", "MODIFY"):
        return []
    base = {key: new.get(key) for key in ("drop_id", "creator_id", "product_id") if new.get(key) is not None}
    if name == "INSERT":
        scheduled = {
            **base,
            "start_time": format_time(new.get("start_time")),
            "end_time": format_time(new.get("end_time")),
            "stock": new.get("stock"),
        }
        return [(EventType.DROP_SCHEDULED, scheduled)]
    events: _Derived = []
    before, after = old.get("status"), new.get("status")
    if before == DropStatus.SCHEDULED and after == DropStatus.LIVE:
        events.append((EventType.DROP_STARTED, dict(base)))
    old_stock, new_stock = old.get("stock"), new.get("stock")
    if old_stock is not None and new_stock is not None and old_stock != new_stock:
        events.append((EventType.STOCK_CHANGED, {**base, "stock": new_stock}))
        low = new.get("low_stock_at")
        if low is not None and old_stock > low >= new_stock:
            events.append((EventType.STOCK_LOW, {**base, "stock": new_stock, "low_stock_threshold": low}))
        if old_stock > 0 and new_stock <= 0:
            events.append((EventType.SOLD_OUT, {**base, "stock": new_stock}))
    if (new.get("stock_shards") or 1) > 1 and before == DropStatus.LIVE and after == DropStatus.SOLD_OUT:
        # A sharded drop's row keeps its initial stock: its status says when the last shard emptied.
        events.append((EventType.SOLD_OUT, {**base, "stock": 0}))
    if after == DropStatus.ENDED and before != DropStatus.ENDED:
        events.append((EventType.DROP_ENDED, dict(base)))
    if after == "cancelled" and before != "cancelled":
        events.append((EventType.DROP_CANCELLED, dict(base)))
    return events


def _shard_events(name: Any, old: dict[str, Any], new: dict[str, Any]) -> _Derived:
    """A shard's stock moved: the drop's stock changed (its total is filled in when published)."""
    old_stock, new_stock = old.get("stock"), new.get("stock")
    if name != "MODIFY" or old_stock is None or new_stock is None or old_stock == new_stock:
        return []
    data = {"drop_id": new.get("drop_id"), "shard_count": new.get("shard_count"), "stock": None}
    return [(EventType.STOCK_CHANGED, data)]


def publish(envelopes: list[Envelope]) -> None:
    """Publish envelopes to the events topic (up to 10 per SNS call); raises if any is not accepted."""
    messages.publish_events(envelopes)


def _fill_shard_totals(envelopes: list[Envelope]) -> None:
    """A shard's stock_changed carries the drop's total, read after the write."""
    for envelope in envelopes:
        data = envelope.data
        if envelope.event_type == EventType.STOCK_CHANGED and data.get("stock") is None:
            data["stock"] = stock.total(str(data["drop_id"]), int(data.pop("shard_count") or 1), fresh=True)


def superseded_stock_changes(records: list[Mapping[str, Any]]) -> set[str]:
    """Ids of stock_changed events that a later record of the same batch supersedes.

    Viewers only need the newest stock, so a rush of orders publishes one stock_changed per drop
    per batch instead of one per order. If a later record fails, the retry starts at it, so the
    newest value is still published.
    """
    changes: list[tuple[str, str, int]] = []
    for place, raw in enumerate(records):
        try:
            envelopes = envelopes_for(raw)
        except Exception:  # noqa: S112 - the record's own handling reports it
            continue
        # A stream orders a drop's changes: a record's place in the batch is its time (chalicelib.core.coalescing).
        stock_changes = [e for e in envelopes if e.event_type == EventType.STOCK_CHANGED]
        changes += [(e.event_id, str(e.data.get("drop_id")), place) for e in stock_changes]
    return coalescing.superseded(changes)


def _publish_records(pending: list[tuple[int, list[Envelope]]]) -> int | None:
    """Publish the envelopes of several records, packed ten to a PublishBatch call; the index of the
    first record not published, or None.

    A packed call that fails is retried record by record, so one record SNS refuses (or a call that
    failed for a passing reason) does not hold back its neighbours.
    """
    failed: int | None = None
    chunk: list[tuple[int, list[Envelope]]] = []

    def flush() -> None:
        nonlocal failed
        if not chunk:
            return
        try:
            publish([envelope for _, envelopes in chunk for envelope in envelopes])
        except Exception:
            for index, envelopes in chunk:
                try:
                    publish(envelopes)
                except Exception:
                    logger.exception("record %d: its domain events were not published", index)
                    failed = index if failed is None else min(failed, index)
                    break
        chunk.clear()

    size = 0
    for index, envelopes in pending:
        if size + len(envelopes) > 10:
            flush()
            size = 0
        chunk.append((index, envelopes))
        size += len(envelopes)
        if failed is not None:
            break
    if failed is None:
        flush()
    return failed


def handle_stream_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The `domain_events` handler: publish the batch's events (ten to a call), reporting from the first
    record that failed (Lambda retries a stream from there, ReportBatchItemFailures)."""
    records = list(event.get("Records") or [])
    superseded = superseded_stock_changes(records)
    pending: list[tuple[int, list[Envelope]]] = []
    failed: int | None = None
    for index, raw in enumerate(records):
        try:
            envelopes = [e for e in envelopes_for(raw) if e.event_id not in superseded]
            _fill_shard_totals(envelopes)
        except Exception:
            logger.exception("record %d is not a change this handler understands", index)
            failed = index
            break
        if envelopes:
            pending.append((index, envelopes))
    not_published = _publish_records(pending)
    if not_published is not None:
        failed = not_published if failed is None else min(failed, not_published)
    if failed is None:
        return {"batchItemFailures": []}
    sequence = (records[failed].get("dynamodb") or {}).get("SequenceNumber")
    return {"batchItemFailures": [{"itemIdentifier": sequence}]}
