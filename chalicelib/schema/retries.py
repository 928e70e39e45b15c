"""Retry budgets of the queue consumers: a failed message comes back after a backoff its attempt chooses.

Every Lambda-fed queue allows `topology.MAX_RECEIVES` receives before its dead-letter queue. A record
that fails shortens (or lengthens) its message's invisibility with ChangeMessageVisibility to the
delay of its attempt, so the budget spans about half an hour: a blip of seconds or an outage of
minutes is ridden out, and only a message that can never succeed reaches the DLQ. A transient card
failure (the provider's processing error) is retried on a schedule of seconds instead: a buyer is
waiting for it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.errors import PaymentProviderError
from chalicelib.core.threads import in_context
from chalicelib.schema.messages import PoisonMessageError
from chalicelib.schema.topology import QueueSpec

log = logging.getLogger("livedrop.retries")

# Seconds until a failed message is tried again, by attempt (1-based): about 34 minutes over the
# MAX_RECEIVES - 1 retries, the first ones quick because most failures are short blips.
RETRY_DELAYS = (2, 5, 15, 30, 60, 120, 300, 600, 900)
# A charge the provider could not process (its 5xx, a timeout): seconds, not minutes, at first.
TRANSIENT_CHARGE_DELAYS = (1, 2, 4, 8, 15, 30, 60, 120, 300)


def retry_delay(attempt: int, error: BaseException | None = None) -> int:
    """Seconds before receive number `attempt + 1` of a message whose attempt `attempt` failed with `error`.

    A poison message (no retry can fix it) comes back at once: it reaches its DLQ after the queue's
    receives in seconds, rather than waiting out the backoff meant for failures that pass."""
    if isinstance(error, PoisonMessageError):
        return 0
    delays = TRANSIENT_CHARGE_DELAYS if isinstance(error, PaymentProviderError) else RETRY_DELAYS
    return delays[min(max(attempt, 1), len(delays)) - 1]


class RetryingBatchProcessor(BatchProcessor):
    """Powertools' SQS BatchProcessor whose records may run side by side (`workers` > 1) and whose failed
    messages come back after the backoff of their attempt."""

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
        """Record the failure and set the message's invisibility to the backoff of its attempt."""
        try:
            attempt = int(record.attributes.approximate_receive_count)
            aws.client("sqs").change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=retry_delay(attempt, exception[1]),
            )
        except Exception:
            log.exception("could not set the retry delay of message %s", getattr(record, "message_id", "?"))
        log.warning("message %s failed: %s", getattr(record, "message_id", "?"), exception[1])
        return super().failure_handler(record, exception)
