"""Reaching fans who are not looking: e-mail and Web Push for the events each user opted into.

The deliver consumer calls `reach` with the users of one slice of a drop's followers (so a million
followers are thousands of small invocations, never one), and with the one user of a deliver message
that `enqueue` put there for a buyer's confirmation or a draw's winner. For each user it reads their
switches and address in one BatchGetItem each, then sends side by side. Each (channel, event, user)
is claimed with a conditional write before it is sent (one transaction claims a call's sends), so a
retried slice, a redelivered message or two copies running at once never send it twice; a send that
fails gives its claim back and fails the message, which is retried (the users already reached stay
claimed).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.core.observability import count
from chalicelib.core.threads import in_context
from chalicelib.delivery import mailer, webpush
from chalicelib.domain import preferences
from chalicelib.schema import idempotency, topology
from chalicelib.schema.messages import DeliverKind, Envelope, PoisonMessageError, send_messages
from chalicelib.schema.messages import EventType as Event
from chalicelib.schema.messages import FrameType as Frame
from chalicelib.schema.models import NotificationPreference, User

log = logging.getLogger("livedrop.reach")

# The events sent by e-mail and push, and how long a push service keeps a push for an offline browser:
# a drop's start is stale in minutes, a winner's purchase window lasts about as long as that.
PUSH_TTL_SECONDS = {
    Event.DROP_STARTED.value: 15 * 60,
    Event.ORDER_CONFIRMED.value: 24 * 3600,
    Frame.DRAW_WON.value: 3600,
}
SEND_WORKERS = 8


ITEMS_PER_MESSAGE = 25  # events (each for a few users) one deliver message carries
_batch: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("reach_batch", default=None)


def enqueue(event: Envelope, user_ids: list[str]) -> None:
    """Hand an event for these users to the deliver consumer (nothing for an event never sent); inside
    `batched`, at the end of the block."""
    if event.event_type not in PUSH_TTL_SECONDS or not user_ids:
        return
    item = {"event": event.as_dict(), "user_ids": list(user_ids)}
    pending = _batch.get()
    if pending is not None:
        pending.append(item)
    else:
        send_messages(topology.DELIVER, [{"kind": DeliverKind.REACH.value, "items": [item]}])


@contextlib.contextmanager
def batched() -> Iterator[None]:
    """Collect the block's `enqueue`s and send them at its end, 25 to a message, 10 messages a call."""
    pending: list[dict[str, Any]] = []
    token = _batch.set(pending)
    try:
        yield
    finally:
        _batch.reset(token)
        chunks = [pending[i : i + ITEMS_PER_MESSAGE] for i in range(0, len(pending), ITEMS_PER_MESSAGE)]
        if chunks:
            send_messages(topology.DELIVER, [{"kind": DeliverKind.REACH.value, "items": c} for c in chunks])


def _deliveries_of(message: dict[str, Any]) -> list[tuple[Envelope, list[str]]]:
    items = message.get("items")
    if not isinstance(items, list) or not items:
        raise PoisonMessageError("reach message without items")
    deliveries: list[tuple[Envelope, list[str]]] = []
    for item in items:
        user_ids = item.get("user_ids") if isinstance(item, dict) else None
        if not isinstance(user_ids, list) or not all(isinstance(u, str) for u in user_ids):
            raise PoisonMessageError("reach message without user_ids")
        deliveries.append((Envelope.parse(item.get("event")), user_ids))
    return deliveries


def deliver_message(message: dict[str, Any]) -> None:
    """A deliver-queue message of `enqueue`: events, each for the users it names, reached together."""
    reach_all(_deliveries_of(message))


def reach(event: Envelope, user_ids: Iterable[str]) -> None:
    """E-mail and push `event` to those of `user_ids` who want it, each at most once."""
    reach_all([(event, list(user_ids))])


class _People:
    """The switches of some users, and the addresses of those of them who want an e-mail."""

    def __init__(self, deliveries: list[tuple[Envelope, list[str]]]) -> None:
        users = sorted({user_id for _, event_users in deliveries for user_id in event_users})
        self.switches = preferences.of_users(users) if users else {}
        self.mailed = {
            u for event, event_users in deliveries for u in self.wanting(preferences.EMAIL, event, event_users)
        }
        self.addresses = _addresses(sorted(self.mailed))

    def wanting(self, channel: str, event: Envelope, event_users: list[str]) -> list[str]:
        return [u for u in event_users if preferences.wants(self.switches[u], channel, event.event_type)]

    def knows(self, deliveries: list[tuple[Envelope, list[str]]]) -> bool:
        return all(u in self.switches for _, event_users in deliveries for u in event_users)


_read: contextvars.ContextVar[_People | None] = contextvars.ContextVar("reach_people", default=None)


@contextlib.contextmanager
def read_ahead(messages: Iterable[Any]) -> Iterator[None]:
    """Read the switches and addresses of every user the reach messages among `messages` name at once
    (a BatchGetItem per 100 users each), for the block's reach_all calls to share: a deliver batch reads
    them in two or three calls rather than two for each message. A message that cannot be read is left
    to its own record (which fails with the reason); a failed read leaves each record to read its own."""
    deliveries: list[tuple[Envelope, list[str]]] = []
    for message in messages:
        if isinstance(message, dict) and message.get("kind") == DeliverKind.REACH.value:
            with contextlib.suppress(PoisonMessageError):
                deliveries += _deliveries_of(message)
    people = None
    try:
        people = _People(_wanted(deliveries)) if deliveries else None
    except Exception:
        log.exception("could not read the people of a deliver batch; each message reads its own")
    token = _read.set(people)
    try:
        yield
    finally:
        _read.reset(token)


def _wanted(deliveries: list[tuple[Envelope, list[str]]]) -> list[tuple[Envelope, list[str]]]:
    return [(event, list(dict.fromkeys(users))) for event, users in deliveries if event.event_type in PUSH_TTL_SECONDS]


def reach_all(deliveries: list[tuple[Envelope, list[str]]]) -> None:
    """E-mail and push each event to those of its users who want it, each at most once: the switches and
    addresses of all their users read together (a BatchGetItem per 100, or read ahead for the whole
    batch), the sends side by side."""
    wanted = _wanted(deliveries)
    if not any(users for _, users in wanted):
        return
    ahead = _read.get()
    people = ahead if ahead is not None and ahead.knows(wanted) else _People(wanted)
    jobs: list[tuple[str, Callable[[], None]]] = []
    for event, event_users in wanted:
        for user_id in people.wanting(preferences.EMAIL, event, event_users):
            if user_id in people.addresses:
                jobs.append((f"email#{event.event_id}#{user_id}", _mail_job(event, user_id, people.addresses[user_id])))
        for user_id in people.wanting(preferences.WEB_PUSH, event, event_users):
            if _has_push(people.switches[user_id]):
                jobs.append((f"push#{event.event_id}#{user_id}", _push_job(event, user_id)))
    # Claimed together (a transaction per 100 sends, not a write each), then sent side by side.
    mine = idempotency.claim_for_good(key for key, _ in jobs) if jobs else set()
    sends = [job for job in jobs if job[0] in mine]  # the others went out before, or are going now
    if not sends:
        return
    if len(sends) == 1:  # a buyer's confirmation: no pool to start
        outcomes = [_send(sends[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(SEND_WORKERS, len(sends))) as pool:
            outcomes = list(pool.map(in_context(_send), sends))
    failures = [error for error in outcomes if error is not None]
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(sends)} sends failed: {failures[0]}")


def _has_push(row: NotificationPreference | None) -> bool:
    return row is not None and bool(row.has_push)


def _addresses(user_ids: list[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = User.batch_get(user_ids, attributes_to_get=["user_id", "email"])
    return {str(row.user_id): str(row.email) for row in rows if row.email}


def _mail_job(event: Envelope, user_id: str, address: str) -> Callable[[], None]:
    def send() -> None:
        mailer.send(mailer.compose(event, user_id, address))
        count("EmailsSent")

    return send


def _push_job(event: Envelope, user_id: str) -> Callable[[], None]:
    def send() -> None:
        ttl = PUSH_TTL_SECONDS[event.event_type]
        for row in webpush.subscriptions_of(user_id):
            count(f"Pushes{webpush.push(row, event.frame(), ttl).capitalize()}")

    return send


def _send(job: tuple[str, Callable[[], None]]) -> Exception | None:
    """Send a claimed job; a failed send gives its claim back, so the retry sends it. The error, or None."""
    key, send = job
    try:
        send()
    except Exception as error:
        log.warning("could not send %s: %s", key, error)
        try:
            idempotency.release(key)
        except Exception:
            log.exception("could not give back the claim %s: it will not be sent", key)
        return error
    return None
