"""DynamoDB write units, computed the way DynamoDB bills them, for every write made in this process.

A botocore hook sees each PutItem, UpdateItem, DeleteItem, BatchWriteItem and TransactWriteItems. It
reads each written item's image just before and just after the call (reads not counted; writes are
serialised while counting, so the two images belong to that write alone) and adds up:

- the item: one unit per started KB of the larger image, two per KB in a transaction (a
  ConditionCheck too); a write refused by its condition still costs its item's units;
- each global secondary index: nothing when the write changes nothing the index projects; one write
  of the projected entry when the item enters, leaves or changes inside the index; two (a delete and
  a put) when the index key changes. The indexes come from chalicelib.schema.models, the one schema.

Item sizes follow DynamoDB's rules closely enough for whole units: attribute names plus values, a
number as about one byte per two digits.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from chalicelib.schema.models import ALL_MODELS, table_spec

KB = 1024
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's JSON shape."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: member}) for member in inner)
    if kind == "L":
        return 3 + sum(value_size(member) + 1 for member in inner)
    return 3 + sum(len(name.encode()) + value_size(member) + 1 for name, member in inner.items())


def item_size(item: dict[str, Any] | None) -> int:
    """Bytes of an item: its attribute names plus their values (0 for no item)."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def units(size: int) -> int:
    return max(1, math.ceil(size / KB))


class _Table:
    """What billing needs of a table: its key attributes and its indexes' keys and projections."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.keys = [k["AttributeName"] for k in spec["KeySchema"]]
        self.indexes: list[tuple[list[str], str, set[str]]] = []
        for index in spec.get("GlobalSecondaryIndexes", []):
            keys = [k["AttributeName"] for k in index["KeySchema"]]
            projection = index["Projection"]
            self.indexes.append((keys, projection["ProjectionType"], set(projection.get("NonKeyAttributes", []))))

    def key_of(self, item: dict[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in self.keys}

    def _entry(
        self, item: dict[str, Any] | None, keys: list[str], kind: str, included: set[str]
    ) -> dict[str, Any] | None:
        """The item's entry in one index: None when the item lacks the index's key (a sparse index)."""
        if not item or any(name not in item for name in keys):
            return None
        if kind == "ALL":
            return item
        shown = {*self.keys, *keys, *(included if kind == "INCLUDE" else ())}
        return {name: value for name, value in item.items() if name in shown}

    def index_units(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> int:
        total = 0
        for keys, kind, included in self.indexes:
            before, after = self._entry(old, keys, kind, included), self._entry(new, keys, kind, included)
            if before == after:
                continue
            if before is not None and after is not None and any(before[k] != after[k] for k in keys):
                total += units(item_size(before)) + units(item_size(after))
            else:
                total += units(max(item_size(before), item_size(after)))
        return total


def _targets(
    operation: str, params: dict[str, Any], table: Callable[[str], _Table]
) -> list[tuple[str, dict[str, Any], int]]:
    """(table, key, multiplier) of every item a write call touches (2 for a transaction's items)."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        name = params["TableName"]
        item = params.get("Key") or params["Item"]
        return [(name, table(name).key_of(item), 1)]
    if operation == "BatchWriteItem":
        found = []
        for name, requests in params["RequestItems"].items():
            for request in requests:
                item = (request.get("PutRequest") or {}).get("Item") or (request.get("DeleteRequest") or {})["Key"]
                found.append((name, table(name).key_of(item), 1))
        return found
    found = []
    for entry in params["TransactItems"]:
        ((_, action),) = entry.items()
        item = action.get("Key") or action["Item"]
        found.append((action["TableName"], table(action["TableName"]).key_of(item), 2))
    return found


@contextmanager
def write_units(counts: Callable[[str, dict[str, Any]], bool] | None = None) -> Iterator[Counter[str]]:
    """Count DynamoDB write units by table (and `total`) for every write any botocore client makes meanwhile;
    with `counts(table, key)`, only the written items it accepts are counted (the work of a run's own
    orders, not of what another test left running on the same stack)."""
    counted: Counter[str] = Counter()
    original: Callable[..., Any] = BaseClient._make_api_call
    lock = threading.RLock()
    known: dict[str, _Table] = {}

    def table(name: str) -> _Table:
        if name not in known:
            # Table names carry the current settings' prefix, so they are read when first needed.
            known.update((spec["TableName"], _Table(spec)) for spec in (table_spec(m)["create"] for m in ALL_MODELS))
        return known[name]

    def image(client: BaseClient, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        # In an empty context: the measuring reads are nobody's, so no function's grants apply to them.
        read = {"TableName": name, "Key": key, "ConsistentRead": True}
        found = contextvars.Context().run(original, client, "GetItem", read)
        return found.get("Item")

    def counting(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name != "dynamodb" or operation not in _WRITES:
            return original(self, operation, params)
        with lock:
            targets = _targets(operation, params, table)
            before = [image(self, name, key) for name, key, _ in targets]
            refused: ClientError | None = None
            try:
                result = original(self, operation, params)
            except ClientError as error:
                result, refused = None, error
            after = before if refused else [image(self, name, key) for name, key, _ in targets]
            for (name, key, times), old, new in zip(targets, before, after, strict=True):
                if counts is not None and not counts(name, key):
                    continue
                spent = units(max(item_size(old), item_size(new))) * times
                if old != new:
                    spent += table(name).index_units(old, new)
                counted[name] += spent
                counted["total"] += spent
        if refused is not None:
            raise refused
        return result

    BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
