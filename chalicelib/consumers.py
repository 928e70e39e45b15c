"""The notification queues' consumers: partial batch responses, idempotency on event ids, quick retries."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib import aws, live_stock, notifications
from chalicelib.config import get_settings
from chalicelib.db import now_ms
from chalicelib.models import ProcessedEvent
from chalicelib.notifications import Envelope, PoisonMessageError
from chalicelib.threads import in_context

log = logging.getLogger("livedrop.consumers")

# Seconds until a failed message is tried again, by attempt. The queues' visibility timeout is for a
# consumer that dies mid-batch; a consumer that reports a failure retries sooner, backing off as it goes.
RETRY_DELAYS = (1, 1, 1, 2, 2, 4, 8, 16, 30)
PROCESSED_TTL = timedelta(days=7)
# Records of a batch are independent (live stock tolerates any order): in AWS they could be separate
# invocations, here they are handled side by side.
BATCH_WORKERS = 8


class RetryingBatchProcessor(BatchProcessor):
    """Powertools' SQS BatchProcessor whose failed messages come back after a short backoff."""

    def __init__(self, queue: str, workers: int = 1) -> None:
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self._queue_url = get_settings().queue_url(queue)
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


def already_processed(key: str) -> bool:
    """Whether a consumer finished the work called `key` before."""
    try:
        ProcessedEvent.get(key, consistent_read=True, attributes_to_get=["event_key"])
    except DoesNotExist:
        return False
    return True


def mark_processed(key: str) -> None:
    """Remember that the work called `key` is done (a concurrent duplicate that finished first is fine)."""
    now = now_ms()
    marker = ProcessedEvent(event_key=key, processed_at=now, ttl=PROCESSED_TTL)
    try:
        marker.save(ProcessedEvent.event_key.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise


def once(key: str, work: Callable[[], None]) -> None:
    """Run `work` unless it was done before; mark it done only after it succeeds, so a failure retries."""
    if already_processed(key):
        return
    work()
    mark_processed(key)


# --- dispatch -----------------------------------------------------------------------------------
def fan_out(event: Envelope) -> None:
    """Send one domain event on its way to everyone who should hear of it."""
    if event.event_type in notifications.ORDER_EVENTS:
        notifications.notify_buyer(event)
    elif event.event_type in notifications.DROP_EVENTS:
        notifications.notify_drop_audience(event)
    elif event.event_type == notifications.STOCK_CHANGED:
        live_stock.stock_changed(event)
    else:
        log.info("ignoring event type %s", event.event_type)


def deliver(message: dict[str, Any]) -> None:
    """Do one deliver-queue message: a slice of followers, or a deferred live-stock push."""
    kind = message.get("kind")
    if kind == "followers":
        notifications.deliver_slice(message)
    elif kind == "stock_flush" and isinstance(message.get("drop_id"), str):
        live_stock.flush(message["drop_id"])
    else:
        raise PoisonMessageError(f"unknown deliver message {kind!r}")


# --- records and batches ------------------------------------------------------------------------
def _notify_record(record: SQSRecord) -> None:
    event = Envelope.parse(record.body)
    if event.event_type == notifications.STOCK_CHANGED:
        # The coalescer is idempotent on its own (it never shows one event twice): skip two writes per order.
        fan_out(event)
        return
    once(f"fanout#{event.event_id}", lambda: fan_out(event))


def _deliver_record(record: SQSRecord) -> None:
    try:
        message = json.loads(record.body)
    except ValueError:
        raise PoisonMessageError("not JSON") from None
    if not isinstance(message, dict):
        raise PoisonMessageError("not an object")
    if message.get("kind") != "followers":
        # A deferred stock push is safe to repeat: it never shows the same event twice.
        deliver(message)
        return
    event_id = (message.get("event") or {}).get("event_id")
    once(f"deliver#{event_id}#{message.get('low')}#{message.get('after')}", lambda: deliver(message))


def handle_notify_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The fanout function: a batch from the notify queue."""
    processor = RetryingBatchProcessor("notify", workers=BATCH_WORKERS)
    return dict(process_partial_response(event, _notify_record, processor, context))


def handle_deliver_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The deliver function: a batch from the deliver queue."""
    processor = RetryingBatchProcessor("deliver", workers=BATCH_WORKERS)
    return dict(process_partial_response(event, _deliver_record, processor, context))
