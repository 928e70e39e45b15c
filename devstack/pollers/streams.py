"""DynamoDB Streams -> a Lambda function, as a Lambda event source mapping on a table's stream does."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from devstack.identity import aws_client
from devstack.lambda_events.dynamodb import stream_record
from devstack.pollers.base import Handler, Pump, backoff, handler_name, invoke
from devstack.pollers.batch import failed_positions
from devstack.pollers.wire import WireClient

logger = logging.getLogger(__name__)


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None
    pending: deque[dict[str, Any]] = field(default_factory=deque)
    last_sequence: str | None = None
    attempts: int = 0
    # While bisecting a failed batch: how many records the next batch takes (None: batch_size).
    limit: int | None = None
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
    in a row at the same record. With `bisect` (BisectBatchOnFunctionError), a batch whose function
    failed (raised or timed out) is retried in halves, so one bad record is dropped alone.
    """

    SHARD_REFRESH_SECONDS = 1.0
    # Lambda polls each shard of a DynamoDB stream four times a second. The pump polls every poll_interval
    # while records come, and at Lambda's rate once none came for IDLE_AFTER_S (an idle dev stack then
    # costs a fifth of the polls).
    IDLE_AFTER_S = 1.0
    IDLE_INTERVAL = 0.25

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
        bisect: bool = False,
    ) -> None:
        super().__init__(name or f"stream:{table_name}")
        self.bisect = bisect
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
        self._streams = WireClient("dynamodbstreams", endpoint, ("GetRecords",))  # devstack.pollers.wire
        self._shards: dict[str, _Shard] = {}
        self._finished: set[str] = set()
        self._next_refresh = 0.0
        self._last_record_at = time.monotonic()

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
            if shard.pending:
                self._last_record_at = time.monotonic()
            if shard.pending and self._window_open(shard):
                continue
            if shard.pending:
                self._process(shard)
                busy = True
            if shard.exhausted:
                del self._shards[shard.shard_id]
                self._finished.add(shard.shard_id)
        if busy:
            return 0.0
        if time.monotonic() - self._last_record_at > self.IDLE_AFTER_S:
            return max(self.poll_interval, self.IDLE_INTERVAL)
        return self.poll_interval

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
        shard.pending.extend(stream_record(r, self.stream_arn, from_wire=True) for r in response.get("Records", []))
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
        size = min(shard.limit or self.batch_size, self.batch_size, len(shard.pending))
        batch = [shard.pending[i] for i in range(size)]
        try:
            result = invoke(self.handler, {"Records": batch}, self.function_name)
        except Exception:
            logger.exception("pump %s: handler failed on %d records", self.name, len(batch))
            failed_at: int | None = 0
            if self.bisect and len(batch) > 1:
                shard.limit = (len(batch) + 1) // 2  # the first half next; the rest after it
        else:
            failed = failed_positions([record["dynamodb"]["SequenceNumber"] for record in batch], result)
            failed_at = failed[0] if failed else None
        if failed_at is None:
            self._checkpoint(shard, len(batch))
            shard.attempts = 0
            shard.limit = None  # progress: full batches again (a bad record ahead is bisected anew)
            return
        if failed_at > 0:
            # ReportBatchItemFailures: the records before the first failure are done.
            self._checkpoint(shard, failed_at)
            shard.attempts = 0
        shard.attempts += 1
        if shard.attempts > self.max_retries:
            dropped = [shard.pending[i] for i in range(min(size - failed_at, len(shard.pending)))]
            self._checkpoint(shard, len(dropped))
            shard.attempts = 0
            shard.limit = None
            logger.error(
                "pump %s: dropped %d stream records after %d retries (AWS: on-failure destination), sequence %s..%s",
                self.name,
                len(dropped),
                self.max_retries,
                dropped[0]["dynamodb"]["SequenceNumber"],
                dropped[-1]["dynamodb"]["SequenceNumber"],
            )
            return
        self._stop_event.wait(backoff(shard.attempts, self.retry_backoff))

    @staticmethod
    def _checkpoint(shard: _Shard, count: int) -> None:
        for _ in range(count):
            shard.last_sequence = shard.pending.popleft()["dynamodb"]["SequenceNumber"]
