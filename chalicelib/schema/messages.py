"""The event pipeline's one vocabulary: event and frame types, the envelope, and queue messages.

Every event name the backend publishes, filters on, consumes or pushes is a member of `EventType`, and
every frame type the WebSocket server sends is a member of `FrameType`: nothing else in chalicelib or
app.py spells them. The web client reads the same names from web/js/events.js, which
`python -m chalicelib.schema.messages --js` writes (a test fails when the two differ).

An `Envelope` is a domain event as the events topic carries it: built by chalicelib.delivery.events from a
stream record, parsed by every consumer, turned into the WebSocket frame a push sends. Queue messages
go out through `send_messages` (queue names come from chalicelib.schema.topology) and events through
`publish_events`. Idempotency markers are chalicelib.schema.idempotency's.

This module imports no model and builds no client when imported: chalicelib.schema.topology (read by the
CDK app and the dev stack before anything is configured) depends on it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.errors import InvalidRequestError
from chalicelib.core.validation import format_time, parse_time


class EventType(StrEnum):
    """The domain events published to the events topic (the wire name is the value)."""

    DROP_SCHEDULED = "drop_scheduled"
    DROP_STARTED = "drop_started"
    DROP_ENDED = "drop_ended"
    DROP_CANCELLED = "drop_cancelled"
    STOCK_CHANGED = "stock_changed"
    STOCK_LOW = "stock_low"
    SOLD_OUT = "sold_out"
    ORDER_PLACED = "order_placed"
    ORDER_CONFIRMED = "order_confirmed"
    ORDER_FAILED = "order_failed"
    ORDER_EXPIRED = "order_expired"


class FrameType(StrEnum):
    """The `type` of every frame the WebSocket server sends (docs/api.md, docs/sale-modes.md)."""

    # Replies to client frames.
    PONG = "pong"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    ERROR = "error"
    # Domain events pushed as they happen: the same names as their events, defined once above.
    DROP_STARTED = EventType.DROP_STARTED.value
    DROP_ENDED = EventType.DROP_ENDED.value
    DROP_CANCELLED = EventType.DROP_CANCELLED.value
    STOCK_CHANGED = EventType.STOCK_CHANGED.value
    STOCK_LOW = EventType.STOCK_LOW.value
    SOLD_OUT = EventType.SOLD_OUT.value
    ORDER_CONFIRMED = EventType.ORDER_CONFIRMED.value
    ORDER_FAILED = EventType.ORDER_FAILED.value
    ORDER_EXPIRED = EventType.ORDER_EXPIRED.value
    # A queue or draw line's news for one user (chalicelib.domain.lines); the draw's also land in the inbox.
    QUEUE_POSITION = "queue_position"
    ADMITTED = "admitted"
    DRAW_WON = "draw_won"
    DRAW_LOST = "draw_lost"


class DeliverKind(StrEnum):
    """The `kind` of a message a consumer sends itself: a slice of a creator's followers or an event to
    e-mail and push to named users (deliver queue), a deferred live-stock push or one slice of a large drop
    audience's live-stock push (live_stock queue), one slice of a large audience's push of a drop event
    (notify queue)."""

    FOLLOWERS = "followers"
    STOCK_FLUSH = "stock_flush"
    STOCK_SLICE = "stock_slice"
    # One slice of a large audience's push of a drop event (push_slices queue): other fanout invocations post them
    # while the first posts its own.
    DROP_PUSH_SLICE = "drop_push_slice"
    # An event to e-mail and push to a few named users (chalicelib.delivery.reach): a buyer, a draw's winner.
    REACH = "reach"


# Who hears of which event. The notify queue's filter policy (topology) and its consumer's dispatch
# (chalicelib.delivery.consumers) both read these, so a new event is routed and handled or neither.
DROP_EVENTS = (
    EventType.DROP_STARTED,
    EventType.STOCK_LOW,
    EventType.SOLD_OUT,
    EventType.DROP_ENDED,
    EventType.DROP_CANCELLED,
)
# The drop events its creator's owner hears of too, in their inbox and on their open sockets, whether or not
# they follow their own creator (chalicelib.delivery.notifications.notify_drop_audience).
OWNER_EVENTS = (EventType.DROP_STARTED, EventType.STOCK_LOW, EventType.SOLD_OUT)
ORDER_EVENTS = (EventType.ORDER_CONFIRMED, EventType.ORDER_FAILED, EventType.ORDER_EXPIRED)
NOTIFY_EVENTS = tuple(t for t in EventType if t in (*DROP_EVENTS, *ORDER_EVENTS))
LIVE_STOCK_EVENTS = (EventType.STOCK_CHANGED,)
PAYMENT_EVENTS = (EventType.ORDER_PLACED,)

# What a frame's `data` may carry (the envelope may hold more, such as the buyer's id).
FRAME_FIELDS = ("drop_id", "order_id", "stock", "product_id", "creator_id")
_ENVELOPE_KEYS = ("event_id", "event_type", "occurred_at", "data")
# SNS PublishBatch and SQS SendMessageBatch take at most ten entries a call.
BATCH_LIMIT = 10


class PoisonMessageError(Exception):
    """A queue message no retry can fix; it fails until the queue moves it to its DLQ."""


def parse_object(raw: Any) -> dict[str, Any]:
    """A message body (JSON text, or already a dict) as a dict; PoisonMessageError if it is not a JSON object."""
    try:
        body = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        raise PoisonMessageError("not JSON") from None
    if not isinstance(body, dict):
        raise PoisonMessageError("not an object")
    return body


@dataclass(frozen=True, eq=False)
class Envelope(Mapping[str, Any]):
    """A domain event as the events topic publishes it: `{event_id, event_type, occurred_at, data}`.

    It also reads as that mapping (`envelope["event_type"]`, `dict(envelope)`, equal to the dict it was
    published as), so whoever looks at published events by key sees exactly what went on the wire.
    """

    event_id: str
    event_type: str
    occurred_at: str
    occurred_at_ms: int
    data: dict[str, Any]

    def __post_init__(self) -> None:
        # An EventType or FrameType member is held as its plain wire name, so the envelope, its JSON
        # and its frame all carry the same string.
        object.__setattr__(self, "event_type", str(self.event_type))

    @classmethod
    def new(cls, event_id: str, event_type: str, occurred_at_ms: int, data: dict[str, Any]) -> Envelope:
        """An envelope of an event that happened at `occurred_at_ms` (epoch milliseconds)."""
        occurred_at = format_time(occurred_at_ms)
        if occurred_at is None:
            raise ValueError(f"no time can show {occurred_at_ms!r}")
        return cls(event_id, event_type, occurred_at, int(occurred_at_ms), data)

    @classmethod
    def parse(cls, raw: Any) -> Envelope:
        """An Envelope from its JSON text or dict; PoisonMessageError if it is not one."""
        if isinstance(raw, Envelope):
            return raw
        body = parse_object(raw)
        event_id, event_type, occurred_at, data = (body.get(k) for k in _ENVELOPE_KEYS)
        if not (isinstance(event_id, str) and event_id and isinstance(event_type, str) and isinstance(data, dict)):
            raise PoisonMessageError("event_id, event_type and data are required")
        if not isinstance(occurred_at, str):
            raise PoisonMessageError("occurred_at is required")
        try:
            occurred_ms = parse_time("occurred_at", occurred_at)
        except InvalidRequestError:
            raise PoisonMessageError("occurred_at is not an ISO-8601 time") from None
        return cls(event_id, event_type, occurred_at, occurred_ms, data)

    def as_dict(self) -> dict[str, Any]:
        """The envelope as JSON-ready data."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "data": self.data,
        }

    def serialize(self) -> str:
        """The envelope as the compact JSON text a topic or queue message carries."""
        return json.dumps(self.as_dict(), separators=(",", ":"))

    def field(self, name: str) -> str:
        """A required string field of `data`; PoisonMessageError when it is missing."""
        value = self.data.get(name)
        if not isinstance(value, str) or not value:
            raise PoisonMessageError(f"{self.event_type} without data.{name}")
        return value

    def frame(self, fields: Collection[str] | None = FRAME_FIELDS) -> dict[str, Any]:
        """The server frame of docs/api.md for this event: `data` keeps only `fields` (None: all of it)."""
        data = dict(self.data) if fields is None else {k: v for k, v in self.data.items() if k in fields}
        return {"type": self.event_type, "event_id": self.event_id, "occurred_at": self.occurred_at, "data": data}

    # --- read as the wire mapping -----------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key not in _ENVELOPE_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_ENVELOPE_KEYS)

    def __len__(self) -> int:
        return len(_ENVELOPE_KEYS)


def reply_frame(frame_type: FrameType, **fields: Any) -> dict[str, Any]:
    """A frame that answers a client frame (pong, subscribed, unsubscribed, error): its type and fields."""
    return {"type": frame_type.value, **fields}


# --- sending -------------------------------------------------------------------------------------
def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), BATCH_LIMIT):
        yield items[start : start + BATCH_LIMIT]


def _body(message: Mapping[str, Any] | str) -> str:
    if isinstance(message, str):
        return message
    if isinstance(message, Envelope):
        return message.serialize()
    return json.dumps(message, separators=(",", ":"))


class Queue(Protocol):
    """One of topology's queues (a QueueSpec): topology reads this module's event sets, so this one
    names the queue by shape rather than importing it."""

    @property
    def name(self) -> str: ...


def send_messages(queue: Queue, messages: Iterable[Mapping[str, Any] | str], delay_seconds: int = 0) -> None:
    """Put messages (dicts or envelopes as JSON, or text) on one of topology's queues, ten to a
    SendMessageBatch call; raises if the queue refuses any (the caller's retry sends them again).

    The queue is topology's QueueSpec rather than a name, so no queue name is spelled outside topology."""
    url = get_settings().queue_url(queue.name)
    sqs = aws.client("sqs")
    for chunk in _chunks(list(messages)):
        entries = [{"Id": str(i), "MessageBody": _body(m), "DelaySeconds": delay_seconds} for i, m in enumerate(chunk)]
        failed = sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
        if failed:
            raise RuntimeError(f"{queue.name} queue refused {len(failed)} messages: {failed[0]}")


def publish_events(envelopes: Sequence[Mapping[str, Any]]) -> None:
    """Publish envelopes to the events topic (ten to a PublishBatch call), each with its event_type
    as the message attribute the queues' filter policies match; raises if any is not accepted."""
    topic = get_settings().events_topic_arn
    sns = aws.client("sns")
    for chunk in _chunks([Envelope.parse(e) for e in envelopes]):
        entries = [
            {
                "Id": str(index),
                "Message": envelope.serialize(),
                "MessageAttributes": {"event_type": {"DataType": "String", "StringValue": envelope.event_type}},
            }
            for index, envelope in enumerate(chunk)
        ]
        failed = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries).get("Failed") or []
        if failed:
            raise RuntimeError(f"SNS refused {len(failed)} domain events: {failed[0].get('Code')}")


# --- the web client's copy -----------------------------------------------------------------------
JS_HEADER = (
    "// Generated from chalicelib/schema/messages.py by `python -m chalicelib.schema.messages --js`: do not edit."
)


def _js_object(name: str, members: Iterable[StrEnum]) -> str:
    lines = [f'  "{member.name}": "{member.value}",' for member in members]
    return "\n".join([f"export const {name} = Object.freeze({{", *lines, "});"])


def javascript() -> str:
    """web/js/events.js: the event and frame names as ES module constants."""
    return "\n".join([JS_HEADER, _js_object("EventType", EventType), _js_object("FrameType", FrameType)]) + "\n"


def main(argv: Sequence[str]) -> int:
    if list(argv) != ["--js"]:
        print("usage: python -m chalicelib.schema.messages --js", file=sys.stderr)
        return 2
    sys.stdout.write(javascript())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
