"""Live stock for drop-page viewers, coalesced: at most one push per drop per window, never one per order.

One marker row per drop (`stock#<drop_id>` in ProcessedEvents) remembers the newest stock_changed event
seen, when viewers were last pushed and which event that push showed, and whether a deferred push is
queued. Each event records itself as the newest, then either claims the window and pushes at once, or
queues one deferred push (`flush`) that runs once the window has passed. A push shows the newest value
when it runs (the Drops row's stock when there is one), so the last stock always reaches viewers, at
most about a second after it changed.

The coalescing rule (chalicelib.core.coalescing, the one place it is spelled): a drop's viewers get at most one
stock push per WINDOW_MS, and it shows the newest stock. A batch applies it first among its own records
(only the newest change of each drop is taken), the marker applies it across batches and Lambdas. A drop
nobody watches costs no write.

A stock_changed of zero also moves the drop to sold_out (chalicelib.domain.scheduling.mark_sold_out), so
the stream handler that published it writes nothing itself; a sharded drop's sold_out event comes from
that status change, once.

Live stock has its own queue and consumer (`handle_batch`), so a rush's stock changes never wait in
front of the pushes buyers and followers wait for. A drop watched by more than PUSH_SLICE connections
is pushed in slices: the first here, the rest as messages on the same queue, each pushed by its own
invocation.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist

from chalicelib.core import aws, coalescing, ports
from chalicelib.delivery.slicing import push_first_queue_rest
from chalicelib.domain import connections, scheduling
from chalicelib.schema import stock, topology
from chalicelib.schema.db import now_ms
from chalicelib.schema.messages import (
    LIVE_STOCK_EVENTS,
    DeliverKind,
    Envelope,
    EventType,
    PoisonMessageError,
    parse_object,
    send_messages,
)
from chalicelib.schema.models import Drop, ProcessedEvent
from chalicelib.schema.retries import RetryingBatchProcessor

WINDOW_MS = coalescing.WINDOW_MS  # at most ~4 pushes per second per drop
FLUSH_DELAY_SECONDS = 1  # SQS delays are whole seconds
# Connections one invocation pushes a frame to; a larger audience is split into slices of this size
# (a slice message of ids stays far below SQS's 256 KB, and its pushes well inside the timeout).
PUSH_SLICE = 1000
BATCH_WORKERS = 8
# The event types the live_stock queue's consumer handles: its filter policy (topology) is the same set.
HANDLED_EVENT_TYPES = LIVE_STOCK_EVENTS
MARKER_TTL_SECONDS = 24 * 3600
# How long the stock of the last push is taken as what viewers show (a push is skipped when it would
# show that stock again); longer than the viewers' cache (connections.VIEWERS_TTL_SECONDS).
SHOWN_FOR_MS = 2000
# An event is recorded as the newest unless a newer one was; the window is claimed and the pushed event
# noted in the same write, so two pushers never show one event twice.
_RECORD = (
    "SET latest_stock = :stock, latest_at = :at, latest_event_id = :id, latest_occurred_at = :occurred, "
    "processed_at = :now, #ttl = :ttl"
)
_NEWER = "(attribute_not_exists(latest_at) OR latest_at <= :at)"
_WINDOW_FREE = "(attribute_not_exists(pushed_at) OR pushed_at <= :cutoff)"


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
    """Take one stock_changed event: push the newest stock now, or make sure a deferred push follows.

    Usually one write: the event is recorded as the newest and the window claimed together; only an
    event inside a claimed window takes a second (recorded, with a deferred push queued once)."""
    drop_id = event.field("drop_id")
    stock = event.data.get("stock")
    if isinstance(stock, bool) or not isinstance(stock, int):
        raise PoisonMessageError("stock_changed without an integer data.stock")
    if stock <= 0:
        # The drop's status follows its stock (the stream handler only publishes): a conditional domain
        # command, so a redelivered or stale event moves nothing, and it runs whether anyone watches.
        scheduling.mark_sold_out(drop_id)
    if not connections.viewers_of(drop_id):
        return  # nobody watches the drop: nothing to show (a viewer reads the stock with the page)
    now = now_ms()
    values = {
        ":stock": {"N": str(stock)},
        ":at": {"N": str(event.occurred_at_ms)},
        ":id": {"S": event.event_id},
        ":occurred": {"S": event.occurred_at},
        ":now": {"N": str(now)},
        ":ttl": {"N": str(now // 1000 + MARKER_TTL_SECONDS)},
    }
    claimed = _update(
        drop_id,
        f"{_RECORD}, pushed_at = :now, pushed_event_id = :id",
        {**values, ":cutoff": {"N": str(now - WINDOW_MS)}},
        f"{_NEWER} AND {_WINDOW_FREE}",
    )
    if claimed is not None:
        if claimed.get("pushed_event_id", {}).get("S") != event.event_id:  # else a repeat, shown already
            _push(drop_id, event.event_id, event.occurred_at, event.occurred_at_ms, stock, claimed)
        return
    # Pushed too recently (or an older event): record it if newer, and queue one deferred push. The
    # marker names the event that queued it, so a retry of that event (its send failed) sends it again.
    recorded = _update(drop_id, f"{_RECORD}, flush_queued = if_not_exists(flush_queued, :id)", values, _NEWER)
    if recorded is not None and recorded.get("flush_queued", values[":id"]) == values[":id"]:
        _queue_flush(drop_id)


def flush(drop_id: str) -> None:
    """The deferred push: the newest stock once the window allows, else try again a little later."""
    now = now_ms()
    claimed = _update(
        drop_id,
        "SET pushed_at = :now, pushed_event_id = latest_event_id REMOVE flush_queued",
        {":now": {"N": str(now)}, ":cutoff": {"N": str(now - WINDOW_MS)}},
        f"attribute_exists(latest_event_id) AND {_WINDOW_FREE}",
    )
    if claimed is None:
        _queue_flush(drop_id)
        return
    event_id = claimed["latest_event_id"]["S"]
    if claimed.get("pushed_event_id", {}).get("S") == event_id:
        return  # nothing newer came since the last push
    occurred_at, at_ms = claimed["latest_occurred_at"]["S"], int(claimed["latest_at"]["N"])
    _push(drop_id, event_id, occurred_at, at_ms, int(claimed["latest_stock"]["N"]), claimed)


def _queue_flush(drop_id: str) -> None:
    flush = {"kind": DeliverKind.STOCK_FLUSH.value, "drop_id": drop_id}
    send_messages(topology.LIVE_STOCK, [flush], delay_seconds=FLUSH_DELAY_SECONDS)


def _push(drop_id: str, event_id: str, occurred_at: str, at_ms: int, recorded: int, before: dict[str, Any]) -> None:
    """Push the drop's current stock to its viewers as event `event_id`, unless they show that stock.

    `before` is the marker as it was before this push claimed the window. What viewers show is only
    trusted for SHOWN_FOR_MS after a push: changes nobody watched were not recorded meanwhile."""
    stock = _current_stock(drop_id, recorded)
    shown = _update(drop_id, "SET pushed_stock = :stock", {":stock": {"N": str(stock)}})
    last_push = int(before.get("pushed_at", {}).get("N", 0))
    recent = now_ms() - last_push <= SHOWN_FOR_MS
    if recent and shown is not None and shown.get("pushed_stock", {}).get("N") == str(stock):
        return  # viewers show this stock already
    newest = Envelope(event_id, EventType.STOCK_CHANGED, occurred_at, at_ms, {"drop_id": drop_id, "stock": stock})
    push_sliced(connections.viewers_of(drop_id), newest.frame(), newest.occurred_at_ms)


def push_sliced(connection_ids: list[str], frame: dict[str, Any], occurred_at_ms: int) -> None:
    """Push a frame to the first PUSH_SLICE connections now; queue the rest in slices of PUSH_SLICE (a
    repeated push shows an event id the client has seen, at worst)."""
    push_first_queue_rest(
        connection_ids,
        PUSH_SLICE,
        frame,
        occurred_at_ms,
        topology.LIVE_STOCK,
        lambda _index, ids: {
            "kind": DeliverKind.STOCK_SLICE.value,
            "frame": frame,
            "occurred_at_ms": occurred_at_ms,
            "ids": ids,
        },
    )


def _current_stock(drop_id: str, recorded: int) -> int:
    """The stock at push time: events may arrive out of order, the Drops row is always current."""
    try:
        drop = Drop.get(drop_id, attributes_to_get=["stock", "stock_shards"])
    except DoesNotExist:
        return recorded
    if (drop.stock_shards or 1) > 1:
        return stock.total(drop_id, int(drop.stock_shards), fresh=True)
    return int(drop.stock)


# --- the live_stock queue's consumer ------------------------------------------------------------
def newest_per_drop(envelopes: dict[str, Envelope]) -> set[str]:
    """The coalescing rule within one batch: message ids of stock_changed events that a newer event of
    the same drop in the batch supersedes (only the newest of each drop is taken)."""
    return coalescing.superseded(
        (message_id, event.data["drop_id"], event.occurred_at_ms)
        for message_id, event in envelopes.items()
        if event.event_type == EventType.STOCK_CHANGED and isinstance(event.data.get("drop_id"), str)
    )


def _slice(message: dict[str, Any]) -> None:
    ids, frame, occurred = message.get("ids"), message.get("frame"), message.get("occurred_at_ms")
    if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids) and isinstance(frame, dict)):
        raise PoisonMessageError("malformed stock slice")
    ports.pusher().push(ids, frame, occurred if isinstance(occurred, int) else None)


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The live_stock function: stock_changed events (newest per drop taken), deferred pushes and slices.

    Nothing here needs an idempotency marker: a repeated event is older than or equal to the marker's
    newest and shows nothing twice, and a repeated slice repeats a push of an event id already shown."""
    envelopes: dict[str, Envelope] = {}
    for record in event.get("Records") or []:
        try:
            body = parse_object(str(record.get("body")))
            if "kind" not in body:
                envelopes[str(record["messageId"])] = Envelope.parse(body)
        except (PoisonMessageError, KeyError):
            continue  # its own record fails with the reason
    superseded = newest_per_drop(envelopes)

    def handle(record: SQSRecord) -> None:
        message = parse_object(record.body)
        kind = message.get("kind")
        if kind == DeliverKind.STOCK_FLUSH and isinstance(message.get("drop_id"), str):
            flush(message["drop_id"])
        elif kind == DeliverKind.STOCK_SLICE:
            _slice(message)
        elif kind is None:
            envelope = Envelope.parse(message)
            if envelope.event_type not in HANDLED_EVENT_TYPES:
                raise PoisonMessageError(f"live_stock does not handle {envelope.event_type}")
            if record.message_id not in superseded:
                stock_changed(envelope)
        else:
            raise PoisonMessageError(f"unknown live_stock message {kind!r}")

    processor = RetryingBatchProcessor(topology.LIVE_STOCK, workers=BATCH_WORKERS)
    return dict(process_partial_response(event, handle, processor, context))
