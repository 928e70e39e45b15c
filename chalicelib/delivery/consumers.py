"""The notification queues' consumers: partial batch responses, idempotency on event ids, retries with
backoff (chalicelib.schema.retries). Live stock has its own queue and consumer, in chalicelib.delivery.live_stock."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.core.budget import Budget, deadline_of
from chalicelib.core.config import get_settings
from chalicelib.core.observability import count
from chalicelib.delivery import notifications, reach
from chalicelib.schema import topology
from chalicelib.schema.idempotency import BatchMarkers, once
from chalicelib.schema.messages import (
    DROP_EVENTS,
    ORDER_EVENTS,
    DeliverKind,
    Envelope,
    PoisonMessageError,
    parse_object,
    send_messages,
)
from chalicelib.schema.retries import RetryingBatchProcessor

log = logging.getLogger("livedrop.consumers")

# Records of a batch are independent: in AWS they could be separate invocations, here they are
# handled side by side.
BATCH_WORKERS = 8
# How long a batch's claims last when the invocation's remaining time is unknown (the fanout timeout).
CLAIM_MS = 20_000
# A deliver invocation works through its batch a step at a time, within DELIVER_SECONDS (or half its
# remaining time if less: chalicelib.core.budget). A step is as many messages as name at most
# DELIVER_STEP_PEOPLE people between them (at least one message): one message of a draw's winners, several
# of a few buyers each. A step's people are read together, and the first step always runs: it is small.
DELIVER_STEP_PEOPLE = 25
DELIVER_SECONDS = 10.0


# --- dispatch -----------------------------------------------------------------------------------
# The event types the notify queue's consumer handles: its filter policy (topology) is the same set.
# Live stock (stock_changed) has a queue and consumer of its own: chalicelib.delivery.live_stock.handle_batch.
HANDLED_EVENT_TYPES = (*ORDER_EVENTS, *DROP_EVENTS)


def fan_out(event: Envelope, sockets: list[str] | None = None, write_row: bool = True) -> None:
    """Send one domain event on its way to everyone who should hear of it (for an order event, the buyer's
    `sockets` and whether to write its inbox row, as notifications.notify_buyer takes them)."""
    if event.event_type in ORDER_EVENTS:
        notifications.notify_buyer(event, sockets, write_row)
    elif event.event_type in DROP_EVENTS:
        notifications.notify_drop_audience(event)
    else:
        log.info("ignoring event type %s", event.event_type)


def deliver(message: dict[str, Any]) -> None:
    """Do one deliver-queue message: a slice of followers, or an event to e-mail and push to named users."""
    kind = message.get("kind")
    if kind == DeliverKind.FOLLOWERS:
        notifications.deliver_slice(message)
    elif kind == DeliverKind.REACH:
        reach.deliver_message(message)  # idempotent per user and channel on its own
    else:
        raise PoisonMessageError(f"unknown deliver message {kind!r}")


# --- records and batches ------------------------------------------------------------------------
def _deliver_record(record: SQSRecord) -> None:
    message = parse_object(record.body)
    if message.get("kind") != DeliverKind.FOLLOWERS:
        deliver(message)  # poison
        return
    event_id = (message.get("event") or {}).get("event_id")
    once(f"deliver#{event_id}#{message.get('low')}#{message.get('after')}", lambda: deliver(message))


class NotifyBatch:
    """One notify-queue batch, with the backend calls its records can share made once for all of them:

    - an order event's inbox row is its own marker: the batch reads which of its order events have
      their row already, and in the same BatchGetItem the open connections of their buyers (their
      quota rows), and skips those; the others are pushed, and the rows of those whose push
      succeeded are written in one BatchWriteItem after them (a failed write fails those records,
      which then push again and write their rows);
    - a drop event's idempotency marker is read in one BatchGetItem and written in one BatchWriteItem once
      its record succeeded (a record found marked is skipped).
    """

    def __init__(self, records: list[dict[str, Any]], claim_ms: int | None = None) -> None:
        self.envelopes: dict[str, Envelope] = {}
        self.slices: dict[str, notifications.PushSlice] = {}  # by message id
        for record in records:
            try:
                message = parse_object(record.get("body"))
                if message.get("kind") == DeliverKind.DROP_PUSH_SLICE:
                    self.slices[str(record["messageId"])] = notifications.read_push_slice(message)
                else:
                    self.envelopes[str(record["messageId"])] = Envelope.parse(message)
            except (PoisonMessageError, KeyError):
                continue  # its own record fails with the reason
        self.buyers: dict[str, tuple[Envelope, list[str]]] = {}
        for event in self.envelopes.values():
            if event.event_type in ORDER_EVENTS:
                try:
                    self.buyers[event.event_id] = (event, [notifications.buyer_of(event)])
                except PoisonMessageError:
                    continue  # its own record fails with the reason
        self._lock = threading.Lock()
        buyers = {users[0] for _, users in self.buyers.values()}
        self.delivered, self.sockets = notifications.delivered_before(self.buyers.values(), buyers)
        self.handled: set[str] = set(self.delivered)
        self.by_batch = set(self.buyers) - self.delivered
        keys = {_fanout_key(e) for e in self.envelopes.values() if e.event_type not in ORDER_EVENTS}
        keys |= {piece.key for piece in self.slices.values()}
        # Claimed, not only read: batches run in parallel, and a copy of a drop event in another batch must
        # not push it a second time (chalicelib.schema.idempotency).
        self.markers = BatchMarkers(keys, claim_ms=claim_ms)

    def record(self, record: SQSRecord) -> None:
        """Handle one record of the batch (thread-safe: records run side by side)."""
        piece = self.slices.get(record.message_id)
        if piece is not None:
            self.markers.once(piece.key, lambda: notifications.push_slice(piece))
            return
        # Parsed once, by the batch; a record it could not parse fails here with the reason.
        event = self.envelopes.get(record.message_id)
        if event is None:
            event = Envelope.parse(record.body)
        if event.event_type in ORDER_EVENTS:
            with self._lock:
                # A copy of the event later in this batch finds it handled (copies run after the first).
                repeat = event.event_id in self.handled
                self.handled.add(event.event_id)
            if not repeat:
                # The batch writes the rows of the events it pushed (write_inboxes), all at once.
                entry = self.buyers.get(event.event_id)
                if entry is None:
                    fan_out(event)  # it names no buyer: its record fails with the reason
                    return
                sockets = None if self.sockets is None else self.sockets.get(entry[1][0])
                fan_out(event, sockets, write_row=event.event_id not in self.by_batch)
            return
        self.markers.once(_fanout_key(event), lambda: fan_out(event))

    def write_inboxes(self, response: dict[str, Any]) -> dict[str, Any]:
        """Write the inbox rows of the order events this batch pushed; their records fail if it cannot."""
        failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        pushed = {
            event.event_id: message_id
            for message_id, event in self.envelopes.items()
            if message_id not in failed and event.event_id in self.by_batch
        }
        if not pushed:
            return response
        try:
            notifications.write_inboxes([self.buyers[event_id] for event_id in pushed])
        except Exception:
            log.exception("could not write the inbox rows of %d order events; they are retried", len(pushed))
            again = [{"itemIdentifier": m} for m in self.envelopes if self.envelopes[m].event_id in pushed]
            return {**response, "batchItemFailures": [*response.get("batchItemFailures", []), *again]}
        return response

    def finish(self) -> None:
        """Mark the drop events handled by this batch (a lost marker only means a later copy is re-pushed)."""
        self.markers.finish()


def _fanout_key(event: Envelope) -> str:
    return f"fanout#{event.event_id}"


def handle_notify_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The fanout function: a batch from the notify queue, or a slice of a big push from push_slices."""
    # A claim lasts as long as this invocation may run: a copy redelivered after a timeout finds it lapsed.
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    records = list(event.get("Records") or [])
    batch = NotifyBatch(records, claim_ms=remaining() if remaining else CLAIM_MS)
    processor = RetryingBatchProcessor(_source_queue(records), workers=BATCH_WORKERS)
    try:
        # The buyers' e-mails and pushes of the whole batch leave in a few deliver messages, not one each.
        with reach.batched():
            return batch.write_inboxes(dict(process_partial_response(event, batch.record, processor, context)))
    finally:
        batch.finish()


def _source_queue(records: list[dict[str, Any]]) -> topology.QueueSpec:
    """The queue a fanout batch came from, by its records' eventSourceARN (a batch is of one queue): where a
    failed record's retry delay is set."""
    arn = str(records[0].get("eventSourceARN", "")) if records else ""
    slices = get_settings().queue_url(topology.PUSH_SLICES.name).rsplit("/", 1)[-1]  # a queue's name ends both
    return topology.PUSH_SLICES if arn.rsplit(":", 1)[-1] == slices else topology.NOTIFY


def handle_deliver_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The deliver function: a batch from the deliver queue, a step of messages at a time (their people
    read once for the step), each step started only while the time left holds the longest one so far.
    Messages it had no time for go back on the queue as new messages (each is idempotent per user and
    channel, or claimed per slice), so an invocation that began behind a busy table ends in time."""
    records = list(event.get("Records") or [])
    budget = Budget(deadline_of(context, DELIVER_SECONDS))
    processor = RetryingBatchProcessor(topology.DELIVER, workers=BATCH_WORKERS)  # reset by each step's call
    failures: list[Any] = []
    steps = _steps(records)
    for index, (records_of_step, bodies) in enumerate(steps):
        if not budget.room("step"):
            failures += _hand_back([record for later, _ in steps[index:] for record in later])
            break
        step = {**event, "Records": records_of_step}
        with budget.step("step"), reach.read_ahead(bodies):  # the step's people, read once
            failures += process_partial_response(step, _deliver_record, processor, context)["batchItemFailures"]
    return {"batchItemFailures": failures}


Step = tuple[list[dict[str, Any]], list[Any]]


def _steps(records: list[dict[str, Any]]) -> list[Step]:
    """The records in order, with their parsed bodies, cut into steps of at most DELIVER_STEP_PEOPLE
    people (a slice of followers counts as a whole step; a message that names nobody readable, as one
    person)."""
    steps: list[Step] = []
    people = 0
    for record, body in zip(records, _bodies(records), strict=True):
        size = _people_in(body)
        if not steps or people + size > DELIVER_STEP_PEOPLE:
            steps.append(([], []))
            people = 0
        steps[-1][0].append(record)
        steps[-1][1].append(body)
        people += size
    return steps


def _people_in(body: Any) -> int:
    kind = body.get("kind") if isinstance(body, dict) else None
    if kind == DeliverKind.FOLLOWERS.value:
        return DELIVER_STEP_PEOPLE  # up to a slice of followers, read and written in one go
    items = body.get("items") if kind == DeliverKind.REACH.value else None
    if not isinstance(items, list):
        return 1
    return max(1, sum(len(i["user_ids"]) for i in items if isinstance(i, dict) and isinstance(i.get("user_ids"), list)))


def _hand_back(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Put records not started back on the deliver queue; those it could not put back are reported failed
    (the queue then redelivers them)."""
    try:
        send_messages(topology.DELIVER, [str(record.get("body") or "") for record in records])
    except Exception:
        log.exception("could not hand %d deliver messages back; they are retried", len(records))
        return [{"itemIdentifier": str(record.get("messageId"))} for record in records]
    count("DeliverHandedBack", len(records))
    return []


def _bodies(records: list[dict[str, Any]]) -> list[Any]:
    """The JSON bodies of records (None for one that is not JSON)."""
    bodies = []
    for record in records:
        try:
            bodies.append(json.loads(record.get("body") or "null"))
        except (ValueError, AttributeError):
            bodies.append(None)
    return bodies
