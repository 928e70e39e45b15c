"""The notification queues' consumers: partial batch responses, idempotency on event ids, quick retries."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import aws, live_stock, notifications, reach, topology
from chalicelib.config import get_settings
from chalicelib.idempotency import BatchMarkers, once
from chalicelib.messages import DROP_EVENTS, ORDER_EVENTS, DeliverKind, Envelope, PoisonMessageError
from chalicelib.messages import EventType as Event
from chalicelib.threads import in_context
from chalicelib.topology import QueueSpec

log = logging.getLogger("livedrop.consumers")

# Seconds until a failed message is tried again, by attempt. The queues' visibility timeout is for a
# consumer that dies mid-batch; a consumer that reports a failure retries sooner, backing off as it goes.
RETRY_DELAYS = (1, 1, 1, 2, 2, 4, 8, 16, 30)
# Records of a batch are independent (live stock tolerates any order): in AWS they could be separate
# invocations, here they are handled side by side.
BATCH_WORKERS = 8


class RetryingBatchProcessor(BatchProcessor):
    """Powertools' SQS BatchProcessor whose failed messages come back after a short backoff."""

    def __init__(self, queue: QueueSpec, workers: int = 1) -> None:
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self._queue_url = get_settings().queue_url(queue.name)
        self._workers = workers

    def process(self) -> list[tuple]:
        """Handle the batch's records, several at once when `workers` > 1."""
        if self._workers <= 1 or len(self.records) <= 1:
            return super().process()
        # A message delivered twice may sit twice in one batch: its copies run after the first, one at a
        # time, so they find the first one's idempotency marker instead of racing it.
        seen: set[str] = set()
        firsts: list[dict[str, Any]] = []
        repeats: list[dict[str, Any]] = []
        for record in self.records:
            body = str(record.get("body"))
            (repeats if body in seen else firsts).append(record)
            seen.add(body)
        with ThreadPoolExecutor(max_workers=min(self._workers, len(firsts))) as pool:
            results = list(pool.map(in_context(self._process_record), firsts))
        return results + [self._process_record(record) for record in repeats]

    def failure_handler(self, record: Any, exception: Any) -> Any:
        """Record the failure and shorten the message's invisibility to the backoff of its attempt."""
        try:
            attempt = int(record.attributes.approximate_receive_count)
            delay = RETRY_DELAYS[min(max(attempt, 1), len(RETRY_DELAYS)) - 1]
            aws.client("sqs").change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
            )
        except Exception:
            log.exception("could not shorten the retry delay of message %s", getattr(record, "message_id", "?"))
        log.warning("message %s failed: %s", getattr(record, "message_id", "?"), exception[1])
        return super().failure_handler(record, exception)


# --- dispatch -----------------------------------------------------------------------------------
# The event types the notify queue's consumer handles: its filter policy (topology) is the same set.
HANDLED_EVENT_TYPES = (*ORDER_EVENTS, *DROP_EVENTS, Event.STOCK_CHANGED)


def fan_out(event: Envelope) -> None:
    """Send one domain event on its way to everyone who should hear of it."""
    if event.event_type in ORDER_EVENTS:
        notifications.notify_buyer(event)
    elif event.event_type in DROP_EVENTS:
        notifications.notify_drop_audience(event)
    elif event.event_type == Event.STOCK_CHANGED:
        live_stock.stock_changed(event)
    else:
        log.info("ignoring event type %s", event.event_type)


def deliver(message: dict[str, Any]) -> None:
    """Do one deliver-queue message: a slice of followers, a deferred live-stock push, or e-mail and push."""
    kind = message.get("kind")
    if kind == DeliverKind.FOLLOWERS:
        notifications.deliver_slice(message)
    elif kind == DeliverKind.STOCK_FLUSH and isinstance(message.get("drop_id"), str):
        live_stock.flush(message["drop_id"])
    elif kind == DeliverKind.REACH:
        reach.deliver_message(message)  # idempotent per user and channel on its own
    else:
        raise PoisonMessageError(f"unknown deliver message {kind!r}")


# --- records and batches ------------------------------------------------------------------------
def _deliver_record(record: SQSRecord) -> None:
    try:
        message = json.loads(record.body)
    except ValueError:
        raise PoisonMessageError("not JSON") from None
    if not isinstance(message, dict):
        raise PoisonMessageError("not an object")
    if message.get("kind") != DeliverKind.FOLLOWERS:
        # A deferred stock push is safe to repeat: it never shows the same event twice.
        deliver(message)
        return
    event_id = (message.get("event") or {}).get("event_id")
    once(f"deliver#{event_id}#{message.get('low')}#{message.get('after')}", lambda: deliver(message))


class NotifyBatch:
    """One notify-queue batch, with the backend calls its records can share made once for all of them:

    - the idempotency markers of the batch's events read in one BatchGetItem, and written in one
      BatchWriteItem once the records succeeded (a record found marked is skipped);
    - the buyers' inbox rows of the batch's order events written in one BatchWriteItem before any
      push (each record then only pushes);
    - of several stock_changed events of one drop, only the newest is taken: live stock shows the
      newest stock, and an older event's push would be coalesced away anyway.
    """

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.envelopes: dict[str, Envelope] = {}
        for record in records:
            try:
                self.envelopes[str(record["messageId"])] = Envelope.parse(record.get("body"))
            except (PoisonMessageError, KeyError):
                continue  # its own record fails with the reason
        self.superseded = _older_stock_changes(self.envelopes)
        keys = {_fanout_key(e) for e in self.envelopes.values() if e.event_type != Event.STOCK_CHANGED}
        self.markers = BatchMarkers(keys)
        self.inbox_written = self._write_buyer_inboxes() if self.markers.done is not None else set()

    def _write_buyer_inboxes(self) -> set[str]:
        deliveries: dict[str, tuple[Envelope, list[str]]] = {}
        for event in self.envelopes.values():
            if event.event_type not in ORDER_EVENTS or _fanout_key(event) in (self.markers.done or ()):
                continue
            try:
                deliveries[event.event_id] = (event, [notifications.buyer_of(event)])
            except PoisonMessageError:
                continue
        if not deliveries:
            return set()
        try:
            notifications.write_inboxes(deliveries.values())
        except Exception:
            log.exception("could not write the batch's inbox rows at once; each record writes its own")
            return set()
        notifications.note_inbox_written(deliveries)
        return set(deliveries)

    def record(self, record: SQSRecord) -> None:
        """Handle one record of the batch (thread-safe: records run side by side)."""
        event = Envelope.parse(record.body)
        if event.event_type == Event.STOCK_CHANGED:
            # The coalescer is idempotent on its own (it never shows one event twice): no markers.
            if record.message_id not in self.superseded:
                fan_out(event)
            return
        self.markers.once(_fanout_key(event), lambda: fan_out(event))

    def finish(self) -> None:
        """Mark the events handled by this batch (a lost marker only means a later copy is re-pushed)."""
        notifications.forget_inbox_written(self.inbox_written)
        self.markers.finish()


def _fanout_key(event: Envelope) -> str:
    return f"fanout#{event.event_id}"


def _older_stock_changes(envelopes: dict[str, Envelope]) -> set[str]:
    """Message ids of stock_changed events a newer one of the same drop in the batch supersedes."""
    newest: dict[str, tuple[int, str]] = {}
    superseded: set[str] = set()
    for message_id, event in envelopes.items():
        drop_id = event.data.get("drop_id")
        if event.event_type != Event.STOCK_CHANGED or not isinstance(drop_id, str):
            continue
        known = newest.get(drop_id)
        if known is None or event.occurred_at_ms >= known[0]:
            if known is not None:
                superseded.add(known[1])
            newest[drop_id] = (event.occurred_at_ms, message_id)
        else:
            superseded.add(message_id)
    return superseded


def handle_notify_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The fanout function: a batch from the notify queue."""
    batch = NotifyBatch(list(event.get("Records") or []))
    processor = RetryingBatchProcessor(topology.NOTIFY, workers=BATCH_WORKERS)
    try:
        return dict(process_partial_response(event, batch.record, processor, context))
    finally:
        batch.finish()


def handle_deliver_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The deliver function: a batch from the deliver queue."""
    processor = RetryingBatchProcessor(topology.DELIVER, workers=BATCH_WORKERS)
    return dict(process_partial_response(event, _deliver_record, processor, context))
