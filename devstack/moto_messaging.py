"""The embedded messaging services' adjustments to moto, applied inside its child process.

SQS long polls wait outside the serialization lock; EventBridge Scheduler refuses malformed expressions;
two stores moto never empties are bounded; SQS receive and send stop computing every queue attribute;
SES reads a raw message's headers without parsing its body.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from devstack.moto_dynamodb import held


def install() -> None:
    """Apply the messaging adjustments (and the bounds on stream iterators and deleted receipts)."""
    _patch_sqs_long_poll()
    _patch_sqs_retention_check()
    _patch_moto_leaks()
    _patch_scheduler_expressions()
    _patch_ses_header_parse()


def _patch_sqs_long_poll() -> None:
    """Let a ReceiveMessage long poll wait without holding the serialization lock."""
    from moto.sqs.models import Queue

    original = Queue.wait_for_messages

    def wait_for_messages(self: Any, timeout: int) -> None:
        lock = getattr(held, "lock", None)
        if lock is None:
            original(self, timeout)
            return
        if self.messages:
            # Visible but undeliverable messages (e.g. a busy FIFO group): moto would spin here; a short
            # pause outside the lock lets other requests in and still rescans promptly.
            lock.release()
            try:
                time.sleep(0.02)
            finally:
                lock.acquire()
            return
        # Taking the queue's condition before letting go of the lock means no add_message notify is missed;
        # the lock is taken back only after the condition is released (one order, no deadlock).
        self._messages_lock.acquire()
        lock.release()
        try:
            self._messages_lock.wait(timeout)
        finally:
            self._messages_lock.release()
            lock.acquire()

    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_RATE = re.compile(r"rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\(\S+( \S+){5}\)")


def valid_schedule_expression(expression: str) -> bool:
    """Whether EventBridge Scheduler accepts `expression`: at() of a real date and time to the second,
    rate() of a positive whole number of minutes, hours or days, or cron() of six fields."""
    at = _AT.fullmatch(expression)
    if at:
        try:
            datetime.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return False
        return True
    return bool(_RATE.fullmatch(expression) or _CRON.fullmatch(expression))


def _patch_scheduler_expressions() -> None:
    """CreateSchedule and UpdateSchedule refuse a malformed expression (moto stores any string)."""
    import inspect

    from moto.scheduler.exceptions import ValidationException
    from moto.scheduler.models import EventBridgeSchedulerBackend

    for name in ("create_schedule", "update_schedule"):
        method = getattr(EventBridgeSchedulerBackend, name)
        signature = inspect.signature(method)

        def checked(self: Any, *args: Any, _method: Any = method, _signature: Any = signature, **kwargs: Any) -> Any:
            expression = _signature.bind(self, *args, **kwargs).arguments.get("schedule_expression")
            if not isinstance(expression, str) or not valid_schedule_expression(expression):
                raise ValidationException(f"Invalid Schedule Expression {expression}.")
            return _method(self, *args, **kwargs)

        setattr(EventBridgeSchedulerBackend, name, checked)


MAX_SHARD_ITERATORS = 5_000
MAX_DELETED_RECEIPTS = 50_000


def _patch_ses_header_parse() -> None:
    """SendRawEmail reads the sender and the recipients from the message's headers, but moto parses the
    whole MIME message to find them: 8 % of the messaging process's CPU in a rush of orders, each with a
    confirmation e-mail (2026-12-07). Its headers alone give the same values; the message is kept whole."""
    import email.parser
    import types

    from moto.ses import models

    headers_only = email.parser.HeaderParser()
    models.email = types.SimpleNamespace(message_from_string=headers_only.parsestr)  # type: ignore[assignment]


def _patch_moto_leaks() -> None:
    """Bound two stores moto never empties: stream shard iterators (AWS expires them after 15
    minutes; pumps take a new one on every GetRecords) and receipt handles of deleted messages."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend
    from moto.sqs.models import Queue

    get_records = DynamoDBStreamsBackend.get_records

    def bounded_get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        result = get_records(self, iterator_arn, limit)
        if len(self.shard_iterators) > MAX_SHARD_ITERATORS:
            # Insertion order is age order: forget the oldest half, as their expiry would.
            for arn in list(self.shard_iterators)[: MAX_SHARD_ITERATORS // 2]:
                del self.shard_iterators[arn]
        return result

    delete_message = Queue.delete_message

    def bounded_delete_message(self: Any, receipt_handle: str) -> None:
        delete_message(self, receipt_handle)
        if len(self.deleted_messages) > MAX_DELETED_RECEIPTS:
            self.deleted_messages.clear()

    DynamoDBStreamsBackend.get_records = bounded_get_records  # type: ignore[method-assign]
    Queue.delete_message = bounded_delete_message  # type: ignore[method-assign]


def _patch_sqs_retention_check() -> None:
    """ReceiveMessage checks each candidate message's retention by computing all of the queue's attributes,
    counts of visible, invisible and delayed messages included: O(n) per message, O(n^2) per receive with a
    backlog (the messaging process's top hot spot under a rush). Read the retention period itself."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    _patch_sqs_send()


def _patch_sqs_send() -> None:
    """SendMessage (and every SNS delivery to a queue) computes all of the queue's attributes, message counts
    included, only to read ContentBasedDeduplication, a FIFO-only attribute: O(n) per message sent. For a
    standard queue the answer is always "absent", so the send sees an attribute view without the counts."""
    from moto.sqs.models import Queue, SQSBackend

    class _StandardQueueOnSend(Queue):
        __module__ = Queue.__module__  # moto's model metaclass files classes by their module

        @property
        def attributes(self) -> dict[str, Any]:
            return {}

    send_message = SQSBackend.send_message

    def cheap_send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        if queue.fifo_queue or type(queue) is not Queue:
            return send_message(self, queue_name, *args, **kwargs)
        # Requests run one at a time (SerializedApp), so no one else sees the queue while its class is swapped.
        # moto declares Queue abstract (CloudFormationModel) but instantiates it: it is concrete at runtime.
        queue.__class__ = _StandardQueueOnSend  # type: ignore[type-abstract]
        try:
            return send_message(self, queue_name, *args, **kwargs)
        finally:
            queue.__class__ = Queue  # type: ignore[type-abstract]

    SQSBackend.send_message = cheap_send_message  # type: ignore[method-assign]
