"""The one way a queue consumer does each message's work once: markers in the ProcessedEvents table.

In the image of Powertools' `idempotent_function` with its DynamoDB persistence layer, on the table and
grants the consumers already have: a record per piece of work (`event_key`, expiring through the
table's TTL), found before the work and written after it. Unlike Powertools the marker is written only
once the work succeeded, with no "in progress" record before it: a consumer that dies mid-work leaves
nothing that blocks the retry, and the work behind every marker is safe to repeat (a push shows an
event id the client already saw; inbox rows and settlements are overwrites or status-guarded), so two
concurrent copies that both run cost a duplicate push at worst. A batch reads all its markers in one
BatchGetItem and writes them in one BatchWriteItem (`BatchMarkers`), where Powertools costs two writes
per record.

Batches of one queue run in parallel (Lambda's pollers handle several at once), so two copies of one
event can be in flight at the same moment. Where a duplicate would be visible (a second push), the
batch claims its keys first (`BatchMarkers(keys, claim_ms=...)`): one conditional transaction per
batch, in place of the read, puts a claim that lasts the invocation. A copy that finds its key
claimed by another invocation fails (WorkInProgress) and is retried a moment later, when it finds
the work done or, if the other copy failed, the claim released or lapsed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.core import aws
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import ProcessedEvent

log = logging.getLogger("livedrop.idempotency")

PROCESSED_TTL = timedelta(days=7)


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


def once(key: str, work: Callable[[], object]) -> None:
    """Run `work` unless it was done before; mark it done only after it succeeds, so a failure retries."""
    if already_processed(key):
        return
    work()
    mark_processed(key)


def processed_of(keys: set[str]) -> set[str]:
    """Which of `keys` a consumer finished before (one strongly consistent BatchGetItem per 100)."""
    if not keys:
        return set()
    found = ProcessedEvent.batch_get(list(keys), consistent_read=True, attributes_to_get=["event_key"])
    return {str(marker.event_key) for marker in found}


def mark_all_processed(keys: set[str]) -> None:
    """Remember that the work called by each of `keys` is done (BatchWriteItem, 25 to a call)."""
    if not keys:
        return
    now = now_ms()
    with ProcessedEvent.batch_write() as batch:
        for key in keys:
            batch.save(ProcessedEvent(event_key=key, processed_at=now, ttl=PROCESSED_TTL))


class WorkInProgress(Exception):
    """Another invocation is doing this work right now: this copy fails and is retried later."""


_CLAIMABLE = "attribute_not_exists(event_key) OR claimed_until < :now"
_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit


def _claim_put(key: str, now: int, until: int) -> dict[str, object]:
    return {
        "TableName": ProcessedEvent.Meta.table_name,
        "Item": {
            "event_key": {"S": key},
            "processed_at": {"N": str(now)},
            "claimed_until": {"N": str(until)},
            "ttl": {"N": str(until // 1000 + 3600)},
        },
        "ConditionExpression": _CLAIMABLE,
        "ExpressionAttributeValues": {":now": {"N": str(now)}},
    }


def claim(keys: set[str], claim_ms: int) -> tuple[set[str], set[str]]:
    """Claim `keys` for `claim_ms`; returns (done before, claimed by another invocation now), the rest
    being this caller's. One transaction per 100 keys; only when one is taken, a put per key."""
    now = now_ms()
    until = now + max(claim_ms, 1000)
    client = aws.client("dynamodb")
    taken = _put_where_claimable(client, [_claim_put(key, now, until) for key in sorted(keys)])
    done: set[str] = set()
    for key in taken:
        found = client.get_item(
            TableName=ProcessedEvent.Meta.table_name, Key={"event_key": {"S": key}}, ConsistentRead=True
        ).get("Item", {})
        claimed_until = int(found.get("claimed_until", {}).get("N", "0"))
        if found and claimed_until < now:
            done.add(key)  # a finished marker (no claim on it)
    return done, taken - done


def claim_for_good(keys: Iterable[str]) -> set[str]:
    """Claim each of `keys` for as long as markers last (PROCESSED_TTL), where no marker is yet: the keys
    this call claimed; the others were claimed or done by another copy. For work that must never run
    twice, such as sending an e-mail: the caller does the work of the keys it claimed, and gives a key
    back (`release`) if its work failed. One transaction per 100 keys (where there were a put per key);
    only when one of them is taken, a put per key."""
    wanted = sorted(set(keys))
    now = now_ms()
    ttl = now // 1000 + int(PROCESSED_TTL.total_seconds())
    puts = [
        {
            "TableName": ProcessedEvent.Meta.table_name,
            "Item": {"event_key": {"S": key}, "processed_at": {"N": str(now)}, "ttl": {"N": str(ttl)}},
            "ConditionExpression": "attribute_not_exists(event_key)",
        }
        for key in wanted
    ]
    return set(wanted) - _put_where_claimable(aws.client("dynamodb"), puts)


def release(key: str) -> None:
    """Give back a claim of `claim_for_good` whose work failed, so that a retry does it."""
    ProcessedEvent(event_key=key).delete()


def _put_where_claimable(client: Any, puts: list[dict[str, Any]]) -> set[str]:
    """Write each conditional put of a ProcessedEvents marker; the keys whose condition refused it."""
    taken: set[str] = set()
    for start in range(0, len(puts), _TRANSACTION_ITEMS):
        chunk = puts[start : start + _TRANSACTION_ITEMS]
        try:
            client.transact_write_items(TransactItems=[{"Put": put} for put in chunk])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            # Which ones were refused: each on its own (a cancelled transaction wrote none of them).
            for put in chunk:
                try:
                    client.put_item(**put)
                except ClientError as refused:
                    if refused.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise
                    taken.add(str(put["Item"]["event_key"]["S"]))
    return taken


class BatchMarkers:
    """`once` for the records of one batch, with the markers read at once and written at once.

    Records may run side by side (thread-safe). A key found marked, or already done by a copy in this
    batch, is skipped; `finish` marks what succeeded (a lost marker only means a later copy is redone).
    """

    def __init__(self, keys: Iterable[str], claim_ms: int | None = None) -> None:
        self._lock = threading.Lock()
        self.succeeded: set[str] = set()
        # Keys another invocation claimed (with `claim_ms`): their records fail now and come back later.
        self.busy: set[str] = set()
        self._claimed: set[str] = set()
        # None: the markers could not be read at once, and each record reads its own.
        self.done: set[str] | None
        wanted = set(keys)
        try:
            if claim_ms is None:
                self.done = processed_of(wanted)
            else:
                self.done, self.busy = claim(wanted, claim_ms)
                self._claimed = wanted - self.done - self.busy
        except Exception:
            log.exception("could not read the batch's markers at once; each record reads its own")
            self.done, self.busy = None, set()

    def is_done(self, key: str) -> bool:
        """Whether the work called `key` was done before, by an earlier delivery or in this batch."""
        with self._lock:
            if key in self.succeeded:
                return True  # a copy of a record of this batch that already succeeded
        return key in self.done if self.done is not None else already_processed(key)

    def succeeded_with(self, key: str) -> None:
        """The work called `key` succeeded: `finish` marks it."""
        with self._lock:
            self.succeeded.add(key)

    def once(self, key: str, work: Callable[[], object]) -> None:
        """Run `work` unless it was done before; it is marked done by `finish`, if it succeeds."""
        if key in self.busy and key not in self.succeeded:
            raise WorkInProgress(f"{key} is being handled by another invocation")
        if self.is_done(key):
            return
        work()
        self.succeeded_with(key)

    def finish(self) -> None:
        """Mark the work this batch did and release the claims of work that failed (a failure here is
        logged: its copies are redone, safely, once the claims lapse)."""
        try:
            mark_all_processed(self.succeeded)
            released = self._claimed - self.succeeded
            if released:
                with ProcessedEvent.batch_write() as batch:
                    for key in released:
                        batch.delete(ProcessedEvent(event_key=key))
        except Exception:
            log.exception("could not mark %d events handled", len(self.succeeded))
