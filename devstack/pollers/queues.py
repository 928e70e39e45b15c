"""SQS -> a Lambda function, as a Lambda event source mapping on a queue does."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import time
from typing import Any

from devstack.lambda_events.sqs import sqs_record
from devstack.pollers.base import Handler, Pump, handler_name, invoke
from devstack.pollers.batch import failed_positions
from devstack.pollers.wire import WireClient

logger = logging.getLogger(__name__)


class QueuePump(Pump):
    """Polls an SQS queue and invokes `handler` with batches, like a Lambda SQS event source mapping.

    Success deletes every message of the batch; a partial batch response
    `{"batchItemFailures": [{"itemIdentifier": messageId}]}` deletes all but those; an exception (or an
    identifier not in the batch, as in Lambda) deletes none. Undeleted messages come back after the
    queue's VisibilityTimeout. Redrive to the DLQ after the RedrivePolicy's maxReceiveCount is done by
    moto itself on receive (moto/sqs/models.py receive_message), as SQS does, so the pump only keeps
    receiving. While messages come it short-polls (WaitTimeSeconds=0) every poll_interval; once none came
    for IDLE_AFTER_S and no batch is in flight, it long-polls for up to IDLE_WAIT_S, as Lambda's pollers
    do (the embedded AWS waits out a long poll without holding up other requests), so an idle queue
    costs a poll a second and a message is still taken the moment it arrives.

    Up to `concurrency` batches are handled at once (the mapping's MaximumConcurrency, bounded by the
    function's concurrency), as Lambda's pollers do: a new batch is received whenever one of the
    slots is free. Like Lambda, it starts at INITIAL_CONCURRENCY batches and adds SCALE_UP_PER_SECOND
    slots each second the queue keeps a backlog. One thread receives and deletes; the batches run on
    the pump's invocation threads.
    """

    IDLE_AFTER_S = 1.0
    IDLE_WAIT_S = 1
    INITIAL_CONCURRENCY = 5
    SCALE_UP_PER_SECOND = 5  # Lambda: up to 300 more concurrent invocations a minute

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
        concurrency: int = 1,
    ) -> None:
        super().__init__(name or f"queue:{queue_url.rstrip('/').rsplit('/', 1)[-1]}")
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.poll_interval = poll_interval
        self.function_name = function_name or handler_name(handler, self.name)
        self.queue_arn = ""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.concurrency = concurrency
        self.max_in_flight = 0  # the most batches seen in flight at once
        self.batches = 0  # batches handed to the function so far
        self._in_flight: dict[concurrent.futures.Future[Any], list[dict[str, Any]]] = {}
        self._backlog_since: float | None = None
        self._last_message_at = time.monotonic()
        self._invokers = self._new_invokers()
        # Receives and deletes on the wire (devstack.pollers.wire says why); the rest through botocore.
        self._sqs = WireClient("sqs", endpoint, ("ReceiveMessage", "DeleteMessageBatch"))

    def _new_invokers(self) -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"invoke-{self.name}")

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
            idle = not messages and not self._in_flight
            idle = idle and time.monotonic() - self._last_message_at > self.IDLE_AFTER_S
            received = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=self.IDLE_WAIT_S if idle else 0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.update((m["MessageId"], m) for m in received)
            if received:
                self._last_message_at = time.monotonic()
            if messages and window_ends is None:
                window_ends = time.monotonic() + self.batching_window_s
            if len(received) == wanted:
                continue
            if not messages or window_ends is None or time.monotonic() >= window_ends:
                break
            self._stop_event.wait(min(self.poll_interval, max(0.0, window_ends - time.monotonic())))
        return list(messages.values())

    def _slots(self) -> int:
        """How many batches may be in flight now (Lambda's scaling up while a backlog lasts)."""
        if self._backlog_since is None:
            return min(self.concurrency, self.INITIAL_CONCURRENCY)
        grown = int((time.monotonic() - self._backlog_since) * self.SCALE_UP_PER_SECOND)
        return min(self.concurrency, self.INITIAL_CONCURRENCY + grown)

    def _poll_once(self) -> float:
        self._settle(block=len(self._in_flight) >= self._slots())
        if len(self._in_flight) >= self._slots():
            return 0.0
        messages = self._receive()
        if not messages:
            self._backlog_since = None
            return self.poll_interval if not self._in_flight else self._settle(block=True)
        if self._backlog_since is None:
            self._backlog_since = time.monotonic()
        event = {"Records": [sqs_record(message, self.queue_arn) for message in messages]}
        future = self._invokers.submit(invoke, self.handler, event, self.function_name)
        self._in_flight[future] = messages
        self.batches += 1
        self.max_in_flight = max(self.max_in_flight, len(self._in_flight))
        return 0.0

    def _settle(self, *, block: bool) -> float:
        """Delete what finished batches handled (waiting up to a poll interval for one if `block`)."""
        if block and self._in_flight:
            concurrent.futures.wait(
                self._in_flight, timeout=self.poll_interval, return_when=concurrent.futures.FIRST_COMPLETED
            )
        for future in [f for f in self._in_flight if f.done()]:
            self._finish(self._in_flight.pop(future), future)
        return 0.0

    def _finish(self, messages: list[dict[str, Any]], future: concurrent.futures.Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            logger.error(
                "pump %s: handler failed on %d messages; none deleted",
                self.name,
                len(messages),
                exc_info=(type(error), error, error.__traceback__),
            )
            return
        ids = [m["MessageId"] for m in messages]
        failed = {ids[i] for i in failed_positions(ids, future.result())}
        if failed:
            logger.warning("pump %s: %d of %d messages failed, left for retry", self.name, len(failed), len(messages))
        self._delete([m for m in messages if m["MessageId"] not in failed])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop receiving; batches in flight are finished (up to `timeout`) and their messages deleted."""
        super().stop(timeout)
        done, _ = concurrent.futures.wait(self._in_flight, timeout=timeout)
        for future in done:
            with contextlib.suppress(Exception):  # the embedded AWS may be stopping too
                self._finish(self._in_flight.pop(future), future)
        self._invokers.shutdown(wait=False, cancel_futures=True)
        # A stopped pump may be started again (a test pauses a consumer, then resumes it): with a fresh
        # pool, which starts no thread until it is given a batch.
        self._invokers = self._new_invokers()

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                logger.error("pump %s: delete failed: %s", self.name, failure)
