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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.db import now_ms
from chalicelib.models import ProcessedEvent

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


class BatchMarkers:
    """`once` for the records of one batch, with the markers read at once and written at once.

    Records may run side by side (thread-safe). A key found marked, or already done by a copy in this
    batch, is skipped; `finish` marks what succeeded (a lost marker only means a later copy is redone).
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self.succeeded: set[str] = set()
        # None: the markers could not be read at once, and each record reads its own.
        self.done: set[str] | None
        try:
            self.done = processed_of(set(keys))
        except Exception:
            log.exception("could not read the batch's markers at once; each record reads its own")
            self.done = None

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
        if self.is_done(key):
            return
        work()
        self.succeeded_with(key)

    def finish(self) -> None:
        """Mark the work this batch did (a failure here is logged: its copies are redone, safely)."""
        try:
            mark_all_processed(self.succeeded)
        except Exception:
            log.exception("could not mark %d events handled", len(self.succeeded))
