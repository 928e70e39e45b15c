"""Live stock for drop-page viewers, coalesced: at most one push per drop per window, never one per order.

One marker row per drop (`stock#<drop_id>` in ProcessedEvents) remembers the newest stock_changed event
seen, when viewers were last pushed and which event that push showed, and whether a deferred push is
queued. Each event records itself as the newest, then either claims the window and pushes at once, or
queues one deferred push (`flush`) that runs once the window has passed. A push shows the newest value
when it runs (the Drops row's stock when there is one), so the last stock always reaches viewers, at
most about a second after it changed.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist

from chalicelib import aws, bootstrap, connections, stock, topology
from chalicelib.db import now_ms
from chalicelib.messages import DeliverKind, Envelope, EventType, PoisonMessageError, send_messages
from chalicelib.models import Drop, ProcessedEvent

WINDOW_MS = 250  # at most ~4 pushes per second per drop
FLUSH_DELAY_SECONDS = 1  # SQS delays are whole seconds
MARKER_TTL_SECONDS = 24 * 3600
# The window is claimed and the pushed event noted in one write, so two pushers never show one event twice.
_CLAIM = "SET pushed_at = :now, pushed_event_id = latest_event_id"
_WINDOW_OPEN = "attribute_exists(latest_event_id) AND (attribute_not_exists(pushed_at) OR pushed_at <= :cutoff)"


def _update(
    drop_id: str, expression: str, values: dict[str, Any], condition: str | None = None
) -> dict[str, Any] | None:
    """One UpdateItem on the drop's marker: its old image, or None when `condition` failed."""
    args: dict[str, Any] = {
        "TableName": ProcessedEvent.Meta.table_name,
        "Key": {"event_key": {"S": f"stock#{drop_id}"}},
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
        "ReturnValues": "ALL_OLD",
    }
    if "#ttl" in expression:
        args["ExpressionAttributeNames"] = {"#ttl": "ttl"}
    if condition:
        args["ConditionExpression"] = condition
    try:
        return dict(aws.client("dynamodb").update_item(**args).get("Attributes", {}))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return None
        raise


def stock_changed(event: Envelope) -> None:
    """Take one stock_changed event: push the newest stock now, or make sure a deferred push follows."""
    drop_id = event.field("drop_id")
    stock = event.data.get("stock")
    if isinstance(stock, bool) or not isinstance(stock, int):
        raise PoisonMessageError("stock_changed without an integer data.stock")
    now = now_ms()
    newest = _update(
        drop_id,
        "SET latest_stock = :stock, latest_at = :at, latest_event_id = :id, latest_occurred_at = :occurred, "
        "processed_at = :now, #ttl = :ttl",
        {
            ":stock": {"N": str(stock)},
            ":at": {"N": str(event.occurred_at_ms)},
            ":id": {"S": event.event_id},
            ":occurred": {"S": event.occurred_at},
            ":now": {"N": str(now)},
            ":ttl": {"N": str(now // 1000 + MARKER_TTL_SECONDS)},
        },
        "attribute_not_exists(latest_at) OR latest_at <= :at",
    )
    if newest is None:
        return  # an older event than one already recorded: that one's push covers it
    claimed = _update(drop_id, _CLAIM, {":now": {"N": str(now)}, ":cutoff": {"N": str(now - WINDOW_MS)}}, _WINDOW_OPEN)
    if claimed is not None:
        _push(drop_id, claimed)
        return
    # Pushed too recently: queue one deferred push unless one is queued already.
    queued = _update(
        drop_id, "SET flush_queued = :now", {":now": {"N": str(now)}}, "attribute_not_exists(flush_queued)"
    )
    if queued is not None:
        _queue_flush(drop_id)


def flush(drop_id: str) -> None:
    """The deferred push: the newest stock once the window allows, else try again a little later."""
    now = now_ms()
    claimed = _update(
        drop_id,
        f"{_CLAIM} REMOVE flush_queued",
        {":now": {"N": str(now)}, ":cutoff": {"N": str(now - WINDOW_MS)}},
        _WINDOW_OPEN,
    )
    if claimed is None:
        _queue_flush(drop_id)
        return
    _push(drop_id, claimed)


def _queue_flush(drop_id: str) -> None:
    flush = {"kind": DeliverKind.STOCK_FLUSH.value, "drop_id": drop_id}
    send_messages(topology.DELIVER, [flush], delay_seconds=FLUSH_DELAY_SECONDS)


def _push(drop_id: str, marker: dict[str, Any]) -> None:
    """Push the newest stock to the drop's viewers, unless the last push showed that event or that stock."""
    event_id = marker["latest_event_id"]["S"]
    if marker.get("pushed_event_id", {}).get("S") == event_id:
        return
    stock = _current_stock(drop_id, int(marker["latest_stock"]["N"]))
    shown = _update(drop_id, "SET pushed_stock = :stock", {":stock": {"N": str(stock)}})
    if shown is not None and shown.get("pushed_stock", {}).get("N") == str(stock):
        return  # viewers show this stock already
    newest = Envelope(
        event_id,
        EventType.STOCK_CHANGED,
        marker["latest_occurred_at"]["S"],
        int(marker["latest_at"]["N"]),
        {"drop_id": drop_id, "stock": stock},
    )
    bootstrap.pusher().push(connections.subscribers_of(drop_id), newest.frame(), newest.occurred_at_ms)


def _current_stock(drop_id: str, recorded: int) -> int:
    """The stock at push time: events may arrive out of order, the Drops row is always current."""
    try:
        drop = Drop.get(drop_id, attributes_to_get=["stock", "stock_shards"])
    except DoesNotExist:
        return recorded
    if (drop.stock_shards or 1) > 1:
        return stock.total(drop_id, int(drop.stock_shards), fresh=True)
    return int(drop.stock)
