"""Domain events to people: the inbox, follower fan-out in key-range slices, and pushes.

The notify queue's consumer decides who hears of an event and pushes to those online; follower
audiences are split into slices, each a message on the deliver queue whose consumer pages its
followers and writes their inbox rows. Live stock is coalesced in chalicelib.delivery.live_stock; the queue consumers
(batches, retries, idempotency) are in chalicelib.delivery.consumers.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import ports
from chalicelib.core.errors import InvalidPageError, InvalidRequestError
from chalicelib.core.threads import in_context
from chalicelib.core.validation import format_time
from chalicelib.delivery import reach
from chalicelib.delivery.slicing import push_first_queue_rest
from chalicelib.domain import connections, follows
from chalicelib.schema import topology
from chalicelib.schema.db import batch_get
from chalicelib.schema.messages import OWNER_EVENTS, DeliverKind, Envelope, PoisonMessageError, send_messages
from chalicelib.schema.models import Connection, Creator, Drop, Notification
from chalicelib.schema.pagination import decode_page, page_body

log = logging.getLogger("livedrop.notifications")

MIN_SLICES = 8
MAX_SLICES = 64
FOLLOWERS_PER_SLICE = 250  # one deliver message reads at most this many followers, then re-enqueues the rest
# Connections one fanout invocation posts a drop event to; beyond it, other invocations post slices at once.
DROP_PUSH_SLICE = 250
INBOX_TTL = timedelta(days=90)
INBOX_DELAY_SECONDS = 2
_INBOX_PAGE = {"user_id": "S", "sort_key": "S"}


# --- who hears of an event ---------------------------------------------------------------------
def buyer_of(event: Envelope) -> str:
    """The buyer an order event is for; PoisonMessageError when it names no buyer or no order."""
    user_id = event.field("user_id")
    event.field("order_id")  # an order event without its order is poison, not a notification
    return user_id


def notify_buyer(event: Envelope, sockets: list[str] | None = None, write_row: bool = True) -> None:
    """An order event to the buyer: a push to each of their open connections (`sockets` when the caller
    read them already), and an inbox row unless the caller writes it (`write_row=False`)."""
    user_id = buyer_of(event)
    targets = connections.push_targets_of(user_id) if sockets is None else sockets
    report = ports.pusher().push(targets, event.frame(), event.occurred_at_ms)
    for gone in report.gone:
        connections.release(gone, user_id)
    if write_row:
        write_inbox(event, [user_id])
    reach.enqueue(event, [user_id])  # a confirmation's e-mail and push, on the deliver queue


def notify_drop_audience(event: Envelope) -> None:
    """A drop event to the drop's viewers and online followers (pushed now, once per connection) and to
    every follower's inbox (in slices on the deliver queue); the start, low stock and sell-out also to the
    creator's owner (an inbox row and a push), whether or not they follow themselves.

    Who is online is read while the inbox work is queued, each read on a thread of its own: the pushes
    people wait for start after the longest of them (reading a big creator's online followers), not
    after all of them one by one."""
    drop_id = event.field("drop_id")
    creator_id = event.data.get("creator_id") or _creator_of(drop_id)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="audience") as reads:
        viewers = reads.submit(in_context(connections.subscribers_of), drop_id)
        followers = reads.submit(in_context(connections.online_followers), creator_id)
        audience = audience_of(creator_id)
        # Slices first: if anything below fails, the retry re-sends the same slices, which deliver dedupes.
        # They wait a moment so the inbox writes do not compete with the pushes people are waiting for.
        slices = follows.follower_slices(audience.slices) if audience.slices else []
        messages = [slice_message(event, creator_id, part.low, part.high, None) for part in slices]
        enqueue_deliveries(messages, delay_seconds=INBOX_DELAY_SECONDS)
        owner = owner_to_tell(event, audience.owner)
        targets: list[str] = []
        if owner is not None:
            # The row's key is the event's, so a retry, or a follower slice holding the owner, rewrites this row.
            write_inbox(event, [owner])
            targets = connections.push_targets_of(owner)
        targets = viewers.result() + followers.result() + targets
    push_in_slices(event, list(dict.fromkeys(targets)))  # each connection once


def push_in_slices(event: Envelope, targets: list[str]) -> None:
    """Post a drop event to the first DROP_PUSH_SLICE connections now, and put the rest on the push_slices queue
    in slices of DROP_PUSH_SLICE, each of which another fanout invocation posts meanwhile: a big audience is reached in
    the time of one slice, and no invocation posts more than its timeout allows. Each slice is claimed by
    its index (consumers.NotifyBatch), so when this invocation is retried its slices are not posted twice."""
    push_first_queue_rest(
        targets,
        DROP_PUSH_SLICE,
        event.frame(),
        event.occurred_at_ms,
        topology.PUSH_SLICES,
        lambda index, ids: drop_push_slice(event, index, ids),
    )


def drop_push_slice(event: Envelope, index: int, connection_ids: list[str]) -> dict[str, Any]:
    """A push_slices message: slice `index` of the push of drop event `event` to `connection_ids`."""
    return {"kind": DeliverKind.DROP_PUSH_SLICE.value, "event": event.as_dict(), "index": index, "ids": connection_ids}


@dataclass(frozen=True)
class PushSlice:
    """A queued slice of a drop event's push (push_in_slices): its idempotency key, the event, its connections."""

    key: str
    event: Envelope
    connection_ids: list[str]


def read_push_slice(message: dict[str, Any]) -> PushSlice:
    """The slice a push_slices message (kind DROP_PUSH_SLICE) carries; PoisonMessageError if it is malformed."""
    event = Envelope.parse(message.get("event"))
    index, ids = message.get("index"), message.get("ids")
    valid_ids = isinstance(ids, list) and all(isinstance(i, str) for i in ids)
    if not (isinstance(index, int) and not isinstance(index, bool) and valid_ids):
        raise PoisonMessageError("malformed drop push slice")
    return PushSlice(f"fanout#{event.event_id}#{index}", event, [str(i) for i in ids or []])


def push_slice(piece: PushSlice) -> None:
    """Post one slice of a drop event's audience."""
    ports.pusher().push(piece.connection_ids, piece.event.frame(), piece.event.occurred_at_ms)


def owner_to_tell(event: Envelope, owner: str | None) -> str | None:
    """The creator's owner, when this drop event is one they hear of (OWNER_EVENTS)."""
    return owner if owner and event.event_type in OWNER_EVENTS else None


def _creator_of(drop_id: str) -> str:
    try:
        return str(Drop.get(drop_id, attributes_to_get=["creator_id"]).creator_id)
    except DoesNotExist:
        raise PoisonMessageError(f"drop {drop_id} has no creator_id and no Drops row") from None


@dataclass(frozen=True)
class Audience:
    slices: int  # how many parallel slices the creator's followers are read in (0: they have none)
    owner: str | None  # the user who owns the creator (None once the creator is gone)


def audience_of(creator_id: str) -> Audience:
    """What a drop event's fan-out needs of its creator, in one read."""
    try:
        # Read strongly: the count moves in the same transaction as a follow, so a creator read as having
        # no followers has none, and their drop's start queues no follower slices at all.
        creator = Creator.get(creator_id, attributes_to_get=["follower_count", "owner_user_id"], consistent_read=True)
    except DoesNotExist:
        return Audience(slice_count_for(0), None)  # gone: any follow rows left are still read
    followers = int(creator.follower_count or 0)
    return Audience(slice_count_for(followers) if followers > 0 else 0, creator.owner_user_id or None)


def slice_count_for(followers: int) -> int:
    """How many parallel slices a creator's followers are read in (more for big creators)."""
    return max(MIN_SLICES, min(MAX_SLICES, math.ceil(followers / FOLLOWERS_PER_SLICE)))


def slice_message(event: Envelope, creator_id: str, low: str | None, high: str | None, after: str | None) -> dict:
    """A deliver-queue message: this event to the followers in [low, high), resuming after `after`."""
    return {
        "kind": DeliverKind.FOLLOWERS.value,
        "event": event.as_dict(),
        "creator_id": creator_id,
        "low": low,
        "high": high,
        "after": after,
    }


def enqueue_deliveries(messages: list[dict[str, Any]], delay_seconds: int = 0) -> None:
    """Put messages on the deliver queue (ten to a call)."""
    send_messages(topology.DELIVER, messages, delay_seconds)


# --- the deliver queue --------------------------------------------------------------------------
def deliver_slice(message: dict[str, Any]) -> None:
    """Page one slice of a creator's followers into their inboxes (the online ones were pushed already)."""
    try:
        event = Envelope.parse(message["event"])
        creator_id = str(message["creator_id"])
        part = follows.FollowerSlice(message.get("low"), message.get("high"))
    except (KeyError, TypeError):
        raise PoisonMessageError("malformed followers message") from None
    user_ids, resume = follows.read_follower_slice(
        creator_id, part, limit=FOLLOWERS_PER_SLICE, after=message.get("after")
    )
    if resume is not None:
        enqueue_deliveries([{**message, "after": resume}])
    if user_ids:
        write_inbox(event, user_ids)
        reach.reach(event, user_ids)  # e-mail and Web Push to those of the slice who opted in


# --- the inbox ----------------------------------------------------------------------------------
def inbox_sort_key(event: Envelope) -> str:
    """Newest-first order by the event's time; the event id makes a redelivery overwrite its row."""
    return f"{event.occurred_at_ms:013d}#{event.event_id}"


def write_inbox(event: Envelope, user_ids: Iterable[str]) -> None:
    """One inbox row per user for this event (BatchWriteItem; a repeat overwrites the same rows)."""
    write_inboxes([(event, user_ids)])


def write_inboxes(deliveries: Iterable[tuple[Envelope, Iterable[str]]]) -> None:
    """The inbox rows of several events at once: BatchWriteItem, 25 rows to a call."""
    with Notification.batch_write() as batch:
        for event, user_ids in deliveries:
            sort_key = inbox_sort_key(event)
            payload = json.dumps(event.frame()["data"], separators=(",", ":"))
            drop_id = event.data.get("drop_id") if isinstance(event.data.get("drop_id"), str) else None
            order_id = event.data.get("order_id") if isinstance(event.data.get("order_id"), str) else None
            for user_id in dict.fromkeys(user_ids):
                batch.save(
                    Notification(
                        user_id=user_id,
                        sort_key=sort_key,
                        notification_id=event.event_id,
                        event_type=event.event_type,
                        drop_id=drop_id,
                        order_id=order_id,
                        payload=payload,
                        read=False,
                        unread_user=user_id,
                        created_at=event.occurred_at_ms,
                        ttl=INBOX_TTL,
                    )
                )


def delivered_before(
    deliveries: Iterable[tuple[Envelope, Iterable[str]]], sockets_of: Iterable[str] = ()
) -> tuple[set[str], dict[str, list[str]] | None]:
    """The ids of the events whose inbox row each of their users has already, and the open connections of
    the users `sockets_of` names, read together (one BatchGetItem per 100 keys, both tables at once): a
    redelivered order event finds its row, the row being the event's marker. When the rows cannot be
    read, none counts as delivered (a repeat then rewrites its row and pushes again) and the sockets are
    None (each push looks its user's up)."""
    wanted = {(user_id, inbox_sort_key(event)): event.event_id for event, users in deliveries for user_id in users}
    users = sorted(set(sockets_of))
    if not wanted and not users:
        return set(), {}
    keys = [{"user_id": user_id, "sort_key": sort_key} for user_id, sort_key in wanted]
    try:
        items = batch_get(
            {Notification: keys, Connection: [connections.quota_key(u) for u in users]},
            {Notification: ["user_id", "sort_key"], Connection: ["connection_id", "held"]},
        )
    except Exception:
        log.exception("could not read which inbox rows exist already")
        return set(), None
    found = {(row["user_id"], row["sort_key"]) for row in items[Notification]}
    missing = {event_id for key, event_id in wanted.items() if key not in found}
    held = connections.held_by(items[Connection])
    return set(wanted.values()) - missing, {user_id: held.get(user_id, []) for user_id in users}


def inbox(user_id: str, limit: int, page: str | None) -> dict[str, Any]:
    """A user's notifications, newest first, paginated."""
    start = decode_page(page, _INBOX_PAGE)
    if start is not None and start["user_id"]["S"] != user_id:
        raise InvalidPageError("page belongs to another listing")
    results = Notification.query(user_id, scan_index_forward=False, limit=limit, last_evaluated_key=start)
    items = [
        {
            "notification_id": row.notification_id,
            "type": row.event_type,
            "drop_id": row.drop_id,
            "order_id": row.order_id,
            "created_at": format_time(row.created_at),
            "read": bool(row.read),
            "data": _frame_data(row.payload),
        }
        for row in results
    ]
    # The count comes with the page, so the badge and the list the user sees come from the same moment.
    return {**page_body(items, results.last_evaluated_key), "unread": unread_count(user_id)}


def _frame_data(payload: str | None) -> dict[str, Any]:
    """The event's frame data the row was written with (the stock of a stock_low, for one)."""
    try:
        data = json.loads(payload or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# --- read state -----------------------------------------------------------------------------------
MAX_MARKED = 500  # rows one call marks read; the answer's `unread` tells the client whether to call again


def unread_count(user_id: str) -> int:
    """How many of the user's notifications are unread: a COUNT query of the sparse `unread` index."""
    return int(Notification.unread.count(user_id))


def mark_read(user_id: str, up_to_ms: int | None = None, notification_id: str | None = None) -> dict[str, int]:
    """Mark one notification (by id) or every one at or before `up_to_ms` read; returns how many it
    marked and how many stay unread. Marking again is a no-op, so retries are safe."""
    if (up_to_ms is None) == (notification_id is None):
        raise InvalidRequestError("give exactly one of up_to or notification_id")
    rows: Iterable[Notification]
    if up_to_ms is not None:
        rows = Notification.unread.query(user_id, Notification.sort_key <= _sort_key_bound(up_to_ms))
    else:
        rows = (row for row in Notification.unread.query(user_id) if row.sort_key.endswith(f"#{notification_id}"))
    marked = 0
    for row in rows:
        if marked >= MAX_MARKED:
            break
        if _mark_row_read(user_id, row.sort_key):
            marked += 1
    return {"marked": marked, "unread": unread_count(user_id)}


# Sort keys start with the time as 13 digits (every millisecond up to the year 2286).
_LAST_MS = 10**13 - 1


def _sort_key_bound(up_to_ms: int) -> str:
    """The greatest sort key at or before `up_to_ms`, so the text comparison is the time comparison:
    the time is clamped into the 13 digits every key has ("~" sorts after every event id)."""
    return f"{min(max(up_to_ms, 0), _LAST_MS):013d}~"


def _mark_row_read(user_id: str, sort_key: str) -> bool:
    try:
        Notification(user_id=user_id, sort_key=sort_key).update(
            [Notification.read.set(True), Notification.unread_user.remove()],
            # Never recreate a row the TTL removed meanwhile; one already read is left alone.
            condition=Notification.unread_user.exists(),
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True
