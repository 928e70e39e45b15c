"""The consumers' one idempotency helper on the dev stack's ProcessedEvents table: work is done once,
marked only after it succeeds (a failure is retried), copies inside a batch run once."""

from __future__ import annotations

import contextlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.schema import idempotency
from chalicelib.schema.idempotency import BatchMarkers
from chalicelib.schema.models import ProcessedEvent


def key() -> str:
    return f"test#{uuid.uuid4().hex}"


def test_once_runs_work_once_and_retries_a_failure() -> None:
    done: list[str] = []
    name = key()

    def failing() -> None:
        raise RuntimeError("the provider is down")

    with pytest.raises(RuntimeError):
        idempotency.once(name, failing)
    assert not idempotency.already_processed(name)
    for _ in range(3):
        idempotency.once(name, lambda: done.append(name))
    assert done == [name]
    assert ProcessedEvent.get(name, consistent_read=True).ttl is not None  # markers expire with the table's TTL


def test_a_batch_marks_only_what_succeeded_and_later_batches_skip_it() -> None:
    good, bad, copied = key(), key(), key()
    ran: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        with lock:
            ran.append(name)
        if name == bad:
            raise RuntimeError("fails this time")

    def record(markers: BatchMarkers, name: str) -> None:
        with contextlib.suppress(RuntimeError):  # the record fails alone; the queue redelivers it
            markers.once(name, lambda: work(name))

    first = BatchMarkers([good, bad, copied])
    for name in (good, bad, copied, copied):  # a message delivered twice sits twice in one batch
        record(first, name)
    first.finish()
    assert sorted(ran) == sorted([good, bad, copied])
    assert idempotency.processed_of({good, bad, copied}) == {good, copied}

    ran.clear()
    second = BatchMarkers([good, bad, copied])
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda name: record(second, name), [good, bad, copied]))
    second.finish()
    assert ran == [bad]


def test_a_batch_whose_markers_cannot_be_read_at_once_reads_each(monkeypatch) -> None:
    name = key()
    idempotency.mark_processed(name)

    def unavailable(keys: set[str]) -> set[str]:
        raise RuntimeError("BatchGetItem throttled")

    monkeypatch.setattr(idempotency, "processed_of", unavailable)
    markers = BatchMarkers([name])
    assert markers.done is None
    ran: list[str] = []
    markers.once(name, lambda: ran.append(name))
    assert ran == []


def test_claims_for_good_are_taken_once_and_given_back_on_failure() -> None:
    keys = [key() for _ in range(150)]  # two transactions' worth
    first = idempotency.claim_for_good(keys[:120])
    assert first == set(keys[:120])
    # A copy of the same call, and one overlapping it (its transaction is cancelled, then each is put).
    assert idempotency.claim_for_good(keys[:120]) == set()
    assert idempotency.claim_for_good(keys[100:]) == set(keys[120:])
    assert ProcessedEvent.get(keys[0], consistent_read=True).ttl is not None

    idempotency.release(keys[5])  # its send failed: a retry claims it again, and only it
    assert idempotency.claim_for_good(keys[:10]) == {keys[5]}
