"""SQS -> a Lambda function, as a Lambda event source mapping on a queue does."""

from __future__ import annotations

import logging
import time
from typing import Any

from devstack.identity import aws_client
from devstack.lambda_events.sqs import sqs_record
from devstack.pollers.base import Handler, Pump, handler_name, invoke
from devstack.pollers.batch import failed_positions

logger = logging.getLogger(__name__)


class QueuePump(Pump):
    """Polls an SQS queue and invokes `handler` with batches, like a Lambda SQS event source mapping.

    Success deletes every message of the batch; a partial batch response
    `{"batchItemFailures": [{"itemIdentifier": messageId}]}` deletes all but those; an exception (or an
    identifier not in the batch, as in Lambda) deletes none. Undeleted messages come back after the
    queue's VisibilityTimeout. Redrive to the DLQ after the RedrivePolicy's maxReceiveCount is done by
    moto itself on receive (moto/sqs/models.py receive_message), as SQS does, so the pump only keeps
    receiving. Short polls only (WaitTimeSeconds=0): the embedded AWS serializes requests, and a long
    poll would hold everyone else up.
    """

    def __init__(
        self,
        endpoint: str,
        queue_url: str,
        handler: Handler,
        batch_size: int = 10,
        poll_interval: float = 0.05,
        name: str | None = None,
        *,
        function_name: str | None = None,
        batching_window_s: float = 0.0,
    ) -> None:
        super().__init__(name or f"queue:{queue_url.rstrip('/').rsplit('/', 1)[-1]}")
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.poll_interval = poll_interval
        self.function_name = function_name or handler_name(handler, self.name)
        self.queue_arn = ""
        self._sqs = aws_client("sqs", endpoint)

    def _setup(self) -> None:
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attributes["QueueArn"]

    def _receive(self) -> list[dict[str, Any]]:
        """A batch: up to batch_size messages, gathered for up to batching_window_s once the first arrived
        (Lambda's MaximumBatchingWindowInSeconds)."""
        # By message id: a message that became visible again while the window was open comes back with a
        # new receipt handle (the one a delete needs), and is still one message.
        messages: dict[str, dict[str, Any]] = {}
        window_ends: float | None = None
        while len(messages) < self.batch_size and not self._stop_event.is_set():
            wanted = min(10, self.batch_size - len(messages))
            received = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.update((m["MessageId"], m) for m in received)
            if messages and window_ends is None:
                window_ends = time.monotonic() + self.batching_window_s
            if len(received) == wanted:
                continue
            if not messages or window_ends is None or time.monotonic() >= window_ends:
                break
            self._stop_event.wait(min(self.poll_interval, max(0.0, window_ends - time.monotonic())))
        return list(messages.values())

    def _poll_once(self) -> float:
        messages = self._receive()
        if not messages:
            return self.poll_interval
        event = {"Records": [sqs_record(message, self.queue_arn) for message in messages]}
        try:
            result = invoke(self.handler, event, self.function_name)
        except Exception:
            logger.exception("pump %s: handler failed on %d messages; none deleted", self.name, len(messages))
            return 0.0
        ids = [m["MessageId"] for m in messages]
        failed = {ids[i] for i in failed_positions(ids, result)}
        if failed:
            logger.warning("pump %s: %d of %d messages failed, left for retry", self.name, len(failed), len(messages))
        self._delete([m for m in messages if m["MessageId"] not in failed])
        return 0.0

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                logger.error("pump %s: delete failed: %s", self.name, failure)
