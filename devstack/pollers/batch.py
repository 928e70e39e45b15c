"""Lambda's partial batch response (ReportBatchItemFailures), read one way for every event source.

A handler may answer `{"batchItemFailures": [{"itemIdentifier": ID}, ...]}`, ID being a stream record's
SequenceNumber or an SQS message's messageId. An answer without failures (None, {}, an empty list)
means the whole batch succeeded; an identifier that is not in the batch (or an entry that is not an
object) makes Lambda treat the whole batch as failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def failed_positions(identifiers: Sequence[str], result: Any) -> list[int]:
    """Positions in `identifiers` (the batch, in order) that handler `result` reports failed, ascending;
    every position when it names an item that is not in the batch; [] when the batch succeeded."""
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return []
    index = {identifier: i for i, identifier in enumerate(identifiers)}
    positions: set[int] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        # Identifiers are strings; anything else (even an unhashable list) is an unknown item.
        if not isinstance(identifier, str) or identifier not in index:
            return list(range(len(identifiers)))
        positions.add(index[identifier])
    return sorted(positions)
