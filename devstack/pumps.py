"""Event-source pumps: what Lambda's event source mappings and EventBridge Scheduler do, for the dev stack.

Each pump polls the embedded AWS on a daemon thread of its own and calls a Lambda-style handler
`(event, context) -> dict | None` with events shaped exactly like the ones AWS delivers:

- `StreamPump`: a DynamoDB stream -> batches of stream records (retries, ReportBatchItemFailures);
- `QueuePump`: an SQS queue -> batches of messages (partial batch responses; redrive is moto's);
- `SchedulePump`: one-time `at()` schedules of a Scheduler group -> their target with the Input JSON.

A handler exception never kills a pump: it is logged and Lambda's retry semantics apply.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.lambda_runtime import LambdaContext

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

Handler = Callable[[dict[str, Any], Any], Any]

logger = logging.getLogger(__name__)

# Short timeouts: a pump's stop() must stay prompt even when the embedded AWS is slow or gone.
_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=10,
    retries={"max_attempts": 3, "mode": "standard"},
)


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client for `service` at the embedded AWS `endpoint` (own session: clients are per thread)."""
    return boto3.session.Session().client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=_CLIENT_CONFIG,
    )


def handler_name(handler: Handler, default: str) -> str:
    """The Lambda function name for `handler`: a Chalice LambdaFunction's name, else the callable's name."""
    name = getattr(handler, "name", None) or getattr(handler, "__name__", None)
    return name if isinstance(name, str) and name and name != "<lambda>" else default


def invoke(handler: Handler, event: dict[str, Any], function_name: str) -> Any:
    """Call `handler` the way Lambda does: the event plus a fresh context."""
    return handler(event, LambdaContext(function_name))


class Pump:
    """Base of the pumps: a daemon thread calling `_poll_once` until stopped; errors are logged, never fatal."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the pump's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Resolve the source (raises if it does not exist) and start polling on a daemon thread."""
        if self._thread is not None:
            raise RuntimeError(f"pump {self.name} already started")
        self._setup()
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=f"pump-{self.name}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop after the current poll (does not wait)."""
        self._stop_event.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and join the thread (a batch being handled is finished first)."""
        self.request_stop()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("pump %s did not stop within %.1fs", self.name, timeout)

    def __enter__(self) -> Pump:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _setup(self) -> None:
        """Look the source up before the thread starts, so a missing resource fails start()."""

    def _poll_once(self) -> float:
        """Do one round of work; return how long to wait before the next one."""
        raise NotImplementedError

    def _run(self) -> None:
        errors = 0
        while not self._stop_event.is_set():
            try:
                delay = self._poll_once()
                errors = 0
            except Exception:
                if self._stop_event.is_set():
                    # Stopping: a poll cut short by the teardown is expected, not worth a traceback.
                    logger.debug("pump %s: poll interrupted by stop", self.name, exc_info=True)
                    return
                # The embedded AWS may be restarting or a resource may have gone: back off, keep going.
                errors += 1
                logger.exception("pump %s: poll failed (%d in a row)", self.name, errors)
                delay = min(0.1 * 2 ** min(errors, 5), 2.0)
            if delay > 0:
                self._stop_event.wait(delay)


def _backoff(attempt: int, base: float) -> float:
    return min(base * 2 ** max(attempt - 1, 0), 1.0)


# --------------------------------------------------------------------------------------------------
# DynamoDB Streams


def _wire_attribute(value: Any) -> Any:
    """An AttributeValue as it is on the wire (boto3 decodes B/BS to bytes; Lambda events carry base64)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for kind, inner in value.items():
            if kind == "B" and isinstance(inner, bytes | bytearray):
                out[kind] = base64.b64encode(inner).decode()
            elif kind == "BS":
                out[kind] = [base64.b64encode(b).decode() if isinstance(b, bytes | bytearray) else b for b in inner]
            elif kind == "L":
                out[kind] = [_wire_attribute(v) for v in inner]
            elif kind == "M":
                out[kind] = {k: _wire_attribute(v) for k, v in inner.items()}
            else:
                out[kind] = inner
        return out
    return value


def stream_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as boto3 returns it) turned into the record of a Lambda DynamoDB stream event."""
    dynamodb = dict(raw.get("dynamodb", {}))
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        # boto3 parses the timestamp; Lambda events carry epoch seconds (whole seconds, as a number).
        dynamodb["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    elif created is None:
        dynamodb["ApproximateCreationDateTime"] = float(int(time.time()))
    for key in ("Keys", "NewImage", "OldImage"):
        if key in dynamodb:
            dynamodb[key] = {name: _wire_attribute(v) for name, v in dynamodb[key].items()}
    record = {
        "eventID": raw.get("eventID") or uuid.uuid4().hex,
        "eventVersion": raw.get("eventVersion", "1.1"),
        "dynamodb": dynamodb,
        "awsRegion": raw.get("awsRegion", REGION),
        "eventName": raw["eventName"],
        # moto leaves this out; Lambda sets it to the stream's ARN.
        "eventSourceARN": stream_arn,
        "eventSource": "aws:dynamodb",
    }
    if "userIdentity" in raw:
        record["userIdentity"] = raw["userIdentity"]
    return record


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None
    pending: deque[dict[str, Any]] = field(default_factory=deque)
    last_sequence: str | None = None
    attempts: int = 0
    first_pending_at: float | None = None

    @property
    def exhausted(self) -> bool:
        return self.iterator is None and not self.pending


class StreamPump(Pump):
    """Reads a table's DynamoDB stream and invokes `handler` with batches, like a Lambda stream mapping.

    Records reach the handler in order, at most `batch_size` at a time. A batch whose handler raises
    is retried (short backoff) up to `max_retries` times, then skipped and logged as dropped: Lambda's
    behaviour with MaximumRetryAttempts, where AWS would also send the batch's metadata to an
    on-failure destination. A response `{"batchItemFailures": [{"itemIdentifier": SequenceNumber}]}`
    checkpoints before the first failed record and retries from it (ReportBatchItemFailures); an
    identifier that is not in the batch fails the whole batch, as in Lambda. Retries count failures
    in a row at the same record.
    """

    SHARD_REFRESH_SECONDS = 1.0

    def __init__(
        self,
        endpoint: str,
        table_name: str,
        handler: Handler,
        batch_size: int = 100,
        poll_interval: float = 0.05,
        name: str | None = None,
        *,
        from_start: bool = False,
        max_retries: int = 3,
        retry_backoff: float = 0.1,
        function_name: str | None = None,
        batching_window_s: float = 0.0,
    ) -> None:
        super().__init__(name or f"stream:{table_name}")
        self.table_name = table_name
        self.handler = handler
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.poll_interval = poll_interval
        self.from_start = from_start
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.function_name = function_name or handler_name(handler, self.name)
        self.stream_arn = ""
        self._dynamodb = aws_client("dynamodb", endpoint)
        self._streams = aws_client("dynamodbstreams", endpoint)
        self._shards: dict[str, _Shard] = {}
        self._finished: set[str] = set()
        self._next_refresh = 0.0

    def _setup(self) -> None:
        table = self._dynamodb.describe_table(TableName=self.table_name)["Table"]
        arn = table.get("LatestStreamArn")
        if not arn or not table.get("StreamSpecification", {}).get("StreamEnabled", True):
            raise RuntimeError(f"table {self.table_name} has no stream")
        self.stream_arn = arn
        self._refresh_shards("TRIM_HORIZON" if self.from_start else "LATEST")

    def _refresh_shards(self, initial_type: str) -> None:
        """Pick up shards not seen yet; shards found after start are read from their beginning."""
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._streams.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self._shards or shard_id in self._finished:
                continue
            iterator = self._streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=initial_type
            )["ShardIterator"]
            self._shards[shard_id] = _Shard(shard_id, shard.get("ParentShardId"), iterator)
        self._next_refresh = time.monotonic() + self.SHARD_REFRESH_SECONDS

    def _poll_once(self) -> float:
        if time.monotonic() >= self._next_refresh:
            self._refresh_shards("TRIM_HORIZON")
        busy = False
        for shard in list(self._shards.values()):
            if self._stop_event.is_set():
                break
            # A child shard waits until its parent is read to the end, so a key's records stay in order.
            if shard.parent_id in self._shards:
                continue
            if shard.iterator is not None and len(shard.pending) < self.batch_size:
                self._fetch(shard)
            if shard.pending and self._window_open(shard):
                continue
            if shard.pending:
                self._process(shard)
                busy = True
            if shard.exhausted:
                del self._shards[shard.shard_id]
                self._finished.add(shard.shard_id)
        return 0.0 if busy else self.poll_interval

    def _window_open(self, shard: _Shard) -> bool:
        """Whether a short batch should wait for more records (Lambda's MaximumBatchingWindowInSeconds)."""
        if not self.batching_window_s or len(shard.pending) >= self.batch_size or shard.iterator is None:
            shard.first_pending_at = None
            return False
        now = time.monotonic()
        if shard.first_pending_at is None:
            shard.first_pending_at = now
        if now - shard.first_pending_at < self.batching_window_s:
            return True
        shard.first_pending_at = None
        return False

    def _fetch(self, shard: _Shard) -> None:
        try:
            response = self._streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        except ClientError as error:
            # Expired in AWS (15 min); unknown to moto after a restart (an HTTP 500): take a new one.
            logger.warning("pump %s: get_records failed (%s), renewing the shard iterator", self.name, error)
            shard.iterator = self._resume_iterator(shard)
            return
        shard.pending.extend(stream_record(raw, self.stream_arn) for raw in response.get("Records", []))
        # No NextShardIterator: the shard is closed and read to its end.
        shard.iterator = response.get("NextShardIterator")

    def _resume_iterator(self, shard: _Shard) -> str:
        """A fresh iterator just after the last record taken from the shard (or at its start)."""
        last = shard.pending[-1]["dynamodb"]["SequenceNumber"] if shard.pending else shard.last_sequence
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if last is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=last)
        return self._streams.get_shard_iterator(**kwargs)["ShardIterator"]

    def _process(self, shard: _Shard) -> None:
        batch = [shard.pending[i] for i in range(min(self.batch_size, len(shard.pending)))]
        try:
            result = invoke(self.handler, {"Records": batch}, self.function_name)
        except Exception:
            logger.exception("pump %s: handler failed on %d records", self.name, len(batch))
            failed_at: int | None = 0
        else:
            failed_at = _first_failed_record(batch, result)
        if failed_at is None:
            self._checkpoint(shard, len(batch))
            shard.attempts = 0
            return
        if failed_at > 0:
            # ReportBatchItemFailures: the records before the first failure are done.
            self._checkpoint(shard, failed_at)
            shard.attempts = 0
        shard.attempts += 1
        if shard.attempts > self.max_retries:
            dropped = [shard.pending[i] for i in range(min(self.batch_size, len(shard.pending)))]
            self._checkpoint(shard, len(dropped))
            shard.attempts = 0
            logger.error(
                "pump %s: dropped %d stream records after %d retries (AWS: on-failure destination), sequence %s..%s",
                self.name,
                len(dropped),
                self.max_retries,
                dropped[0]["dynamodb"]["SequenceNumber"],
                dropped[-1]["dynamodb"]["SequenceNumber"],
            )
            return
        self._stop_event.wait(_backoff(shard.attempts, self.retry_backoff))

    @staticmethod
    def _checkpoint(shard: _Shard, count: int) -> None:
        for _ in range(count):
            shard.last_sequence = shard.pending.popleft()["dynamodb"]["SequenceNumber"]


def _first_failed_record(batch: list[dict[str, Any]], result: Any) -> int | None:
    """Index of the first record a stream handler's partial batch response reports failed, None if none."""
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return None
    index = {record["dynamodb"]["SequenceNumber"]: i for i, record in enumerate(batch)}
    positions = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in index:
            return 0
        positions.append(index[identifier])
    return min(positions)


# --------------------------------------------------------------------------------------------------
# SQS


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A ReceiveMessage message (as boto3 returns it) turned into the record of a Lambda SQS event."""
    attributes = {name: str(value) for name, value in message.get("Attributes", {}).items()}
    message_attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        # Lambda's lowercase shape: both list fields always present, one of stringValue/binaryValue.
        shaped: dict[str, Any] = {
            "stringListValues": list(value.get("StringListValues", [])),
            "binaryListValues": [_b64(b) for b in value.get("BinaryListValues", [])],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            shaped["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            shaped["binaryValue"] = _b64(value["BinaryValue"])
        message_attributes[name] = shaped
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _b64(value: Any) -> Any:
    return base64.b64encode(value).decode() if isinstance(value, bytes | bytearray) else value


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
        failed = _failed_message_ids(messages, result)
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


def _failed_message_ids(messages: list[dict[str, Any]], result: Any) -> set[str]:
    """Message ids a partial batch response reports failed; every id when it names one not in the batch."""
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return set()
    ids = {m["MessageId"] for m in messages}
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in ids:
            return ids
        failed.add(identifier)
    return failed


# --------------------------------------------------------------------------------------------------
# EventBridge Scheduler

_AT = re.compile(r"^\s*at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)\s*$")


def at_time(expression: str, timezone: str | None = None) -> float | None:
    """Epoch seconds of an `at(yyyy-mm-ddThh:mm:ss)` expression in `timezone` (UTC by default); None if not at()."""
    match = _AT.match(expression or "")
    if not match:
        return None
    naive = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    return naive.replace(tzinfo=ZoneInfo(timezone or "UTC")).timestamp()


@dataclass
class _Schedule:
    name: str
    modified: Any
    due: float | None = None
    target_arn: str = ""
    input: str | None = None
    delete_after: bool = False
    max_retries: int = 0
    attempts: int = 0
    fired: bool = False


class SchedulePump(Pump):
    """Fires the one-time `at()` schedules of an EventBridge Scheduler group (moto stores them, never fires).

    Lists the group every `poll_interval` seconds, reads each new or modified schedule, and at its
    time (minus `early_fire_seconds`) calls `resolve_target(target_arn)(input_json, context)`: the
    event is exactly the Target's Input parsed as JSON, as Scheduler delivers it. Afterwards the
    schedule is deleted when ActionAfterCompletion is DELETE, else remembered as fired (an update
    that changes LastModificationDate re-arms it). A handler exception is retried with a short
    backoff up to min(RetryPolicy.MaximumRetryAttempts, max_retries) times, then dropped with a log
    line (AWS would retry for up to 24 h, then use the target's DLQ). DISABLED schedules never fire;
    an `at()` already past fires at once. rate()/cron() expressions are not fired.
    """

    def __init__(
        self,
        endpoint: str,
        group_name: str,
        resolve_target: Callable[[str], Handler],
        poll_interval: float = 0.2,
        early_fire_seconds: float = 0.0,
        *,
        max_retries: int = 3,
        retry_backoff: float = 0.2,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"schedules:{group_name}")
        self.group_name = group_name
        self.resolve_target = resolve_target
        self.poll_interval = poll_interval
        self.early_fire_seconds = early_fire_seconds
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self._scheduler = aws_client("scheduler", endpoint)
        self._schedules: dict[str, _Schedule] = {}
        self._next_list = 0.0

    def _setup(self) -> None:
        self._scheduler.get_schedule_group(Name=self.group_name)

    def _poll_once(self) -> float:
        if time.monotonic() >= self._next_list:
            self._refresh()
            self._next_list = time.monotonic() + self.poll_interval
        for schedule in sorted(self._due_now(), key=lambda s: s.due or 0.0):
            if self._stop_event.is_set():
                break
            # Each firing is its own Lambda invocation in AWS: a target that waits (the drop
            # lifecycle waits for the exact start second) must not hold back the other schedules.
            schedule.due = None
            threading.Thread(target=self._fire, args=(schedule,), name=f"fire-{schedule.name}", daemon=True).start()
        # Sleep until the next listing or the next due time, whichever is first, so firing is on time.
        wait = self._next_list - time.monotonic()
        upcoming = [s.due - self.early_fire_seconds for s in self._schedules.values() if s.due is not None]
        if upcoming:
            wait = min(wait, min(upcoming) - time.time())
        return max(wait, 0.0)

    def _due_now(self) -> list[_Schedule]:
        now = time.time()
        return [s for s in self._schedules.values() if s.due is not None and now >= s.due - self.early_fire_seconds]

    def _refresh(self) -> None:
        seen: set[str] = set()
        for page in self._scheduler.get_paginator("list_schedules").paginate(GroupName=self.group_name):
            for summary in page.get("Schedules", []):
                name = summary["Name"]
                seen.add(name)
                modified = summary.get("LastModificationDate")
                known = self._schedules.get(name)
                if known is not None and known.modified == modified:
                    continue
                self._schedules[name] = self._load(name, modified)
        for name in set(self._schedules) - seen:
            del self._schedules[name]

    def _load(self, name: str, modified: Any) -> _Schedule:
        entry = _Schedule(name, modified)
        try:
            detail = self._scheduler.get_schedule(Name=name, GroupName=self.group_name)
        except self._scheduler.exceptions.ResourceNotFoundException:
            return entry
        if detail.get("State", "ENABLED") == "DISABLED":
            return entry
        expression = detail.get("ScheduleExpression", "")
        try:
            due = at_time(expression, detail.get("ScheduleExpressionTimezone"))
        except (ValueError, KeyError) as error:
            logger.error("pump %s: schedule %s has a bad expression %r: %s", self.name, name, expression, error)
            return entry
        if due is None:
            logger.warning("pump %s: schedule %s: only at() is fired locally, not %r", self.name, name, expression)
            return entry
        target = detail.get("Target", {})
        allowed = target.get("RetryPolicy", {}).get("MaximumRetryAttempts", self.max_retries)
        entry.due = due
        entry.target_arn = target.get("Arn", "")
        entry.input = target.get("Input")
        entry.delete_after = detail.get("ActionAfterCompletion") == "DELETE"
        # moto fills in AWS's default of 185 retries when none is given: cap it for a dev loop.
        entry.max_retries = max(0, min(int(allowed), self.max_retries))
        return entry

    def _fire(self, schedule: _Schedule) -> None:
        try:
            event = json.loads(schedule.input) if schedule.input else {}
            handler = self.resolve_target(schedule.target_arn)
            function_name = schedule.target_arn.rsplit(":", 1)[-1] or schedule.name
        except Exception:
            logger.exception(
                "pump %s: schedule %s: cannot resolve target %s", self.name, schedule.name, schedule.target_arn
            )
            self._complete(schedule)
            return
        try:
            invoke(handler, event, function_name)
        except Exception:
            schedule.attempts += 1
            if schedule.attempts <= schedule.max_retries:
                logger.exception("pump %s: schedule %s failed, retry %d", self.name, schedule.name, schedule.attempts)
                schedule.due = time.time() + _backoff(schedule.attempts, self.retry_backoff)
                return
            logger.exception(
                "pump %s: schedule %s dropped after %d retries", self.name, schedule.name, schedule.max_retries
            )
        self._complete(schedule)

    def _complete(self, schedule: _Schedule) -> None:
        schedule.due = None
        schedule.fired = True
        if schedule.delete_after:
            # Someone may have deleted it meanwhile: the outcome is the same.
            with contextlib.suppress(self._scheduler.exceptions.ResourceNotFoundException):
                self._scheduler.delete_schedule(Name=schedule.name, GroupName=self.group_name)


class PeriodicPump(Pump):
    """Invokes a handler on a fixed rate with a scheduled event, like an EventBridge rule `rate(...)`
    (what Chalice's @app.schedule deploys)."""

    def __init__(self, handler: Handler, every_seconds: float, function_name: str, *, first_after: float = 5.0) -> None:
        super().__init__(f"rate:{function_name}")
        self.handler = handler
        self.every_seconds = every_seconds
        self.function_name = function_name
        self._next = time.monotonic() + first_after

    def _poll_once(self) -> float:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every_seconds
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT_ID,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": REGION,
                "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{self.function_name}"],
                "detail": {},
            }
            try:
                invoke(self.handler, event, self.function_name)
            except Exception:
                logger.exception("pump %s: scheduled invocation failed", self.name)
        return max(0.0, self._next - time.monotonic())


# --------------------------------------------------------------------------------------------------
# Sets of pumps


class PumpSet:
    """Starts and stops a list of pumps together (stop asks them all first, then joins each)."""

    def __init__(self, pumps: Iterable[Pump] = ()) -> None:
        self.pumps: list[Pump] = list(pumps)
        self._running = False

    def add(self, pump: Pump) -> Pump:
        """Add `pump` (started when the set starts, or now if the set is already running)."""
        self.pumps.append(pump)
        if self._running:
            pump.start()
        return pump

    def start(self) -> None:
        """Start every pump; if one fails to start, stop the ones already started and re-raise."""
        started: list[Pump] = []
        try:
            for pump in self.pumps:
                if not pump.running:
                    pump.start()
                    started.append(pump)
        except Exception:
            stop_all(started)
            raise
        self._running = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every pump."""
        self._running = False
        stop_all(self.pumps, timeout)

    def __iter__(self) -> Iterator[Pump]:
        return iter(self.pumps)

    def __len__(self) -> int:
        return len(self.pumps)

    def __enter__(self) -> PumpSet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_all(pumps: Iterable[Pump]) -> PumpSet:
    """Start `pumps` together and return the running PumpSet."""
    pump_set = PumpSet(pumps)
    pump_set.start()
    return pump_set


def stop_all(pumps: Iterable[Pump], timeout: float = 5.0) -> None:
    """Stop `pumps`: ask all to stop first so they wind down in parallel, then join each."""
    pumps = list(pumps)
    for pump in pumps:
        pump.request_stop()
    for pump in pumps:
        pump.stop(timeout)
