"""DynamoDB capacity units of the calls the dev stack makes, by DynamoDB's own sizing rules.

The embedded DynamoDB does not report consumed capacity, so the bench measures it: every write's item
(after the write, read back uncounted) and every read's items are sized as DynamoDB sizes them, and
each global secondary index whose projection the write changes costs its own write. What is counted:
- a write: 1 unit per started KB of the item (2 in a transaction, a ConditionCheck included);
- an index: 1 unit per started KB of the projected item, when the item is in the index and the write
  touched a projected attribute (a KEYS_ONLY or INCLUDE index is not rewritten by other updates);
- a read: 1 unit per started 4 KB, halved when eventually consistent, doubled in a transaction; a
  Query or a batch sums its items' sizes.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from decimal import Decimal
from typing import Any

KB = 1024
_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value in the wire format ({"S": "x"}), as DynamoDB sizes it."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = str(Decimal(inner).normalize()).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in inner)
    if kind == "NS":
        return sum(value_size({"N": v}) for v in inner)
    if kind == "BS":
        return sum(len(v) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any]) -> int:
    """Bytes of an item: attribute names plus values."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / (4 * KB)))
    return float(units) if consistent else units / 2


class Meter:
    """Capacity units of DynamoDB calls, by table. `record` keeps each call as it is made (in the
    function's own thread, where the dev stack's IAM would refuse the meter's reads); `settle` sizes
    them afterwards with `call(operation, params)`, an uncounted call made outside any function. An
    updated item is sized as it is at the end of the run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.write: Counter[str] = Counter()
        self.read: Counter[str] = Counter()
        self.item_bytes: Counter[str] = Counter()
        self.item_writes: Counter[str] = Counter()
        self._tables: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _indexes(self, call: Any, table: str) -> list[dict[str, Any]]:
        if table not in self._tables:
            self._tables[table] = call("DescribeTable", {"TableName": table})["Table"]
        return self._tables[table].get("GlobalSecondaryIndexes", [])

    def _key_names(self, table: str) -> list[str]:
        return [k["AttributeName"] for k in self._tables[table]["KeySchema"]]

    def _projected(self, table: str, index: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        keys = {k["AttributeName"] for k in index["KeySchema"]} | set(self._key_names(table))
        projection = index.get("Projection", {"ProjectionType": "ALL"})
        if projection["ProjectionType"] == "ALL":
            return item
        kept = keys | set(projection.get("NonKeyAttributes", []))
        return {k: v for k, v in item.items() if k in kept}

    def _write(
        self, call: Any, table: str, key: dict[str, Any], item: dict | None, touched: set | None, x: int
    ) -> None:
        indexes = self._indexes(call, table)
        if item is None:  # an update or delete: the item as it is now (or was, for a delete: its key)
            item = call("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}).get("Item") or key
        size = item_size(item)
        units = x * write_units(size)
        for index in indexes:
            if not all(k["AttributeName"] in item for k in index["KeySchema"]):
                continue
            projected = self._projected(table, index, item)
            if touched is not None and not (touched & set(projected)):
                continue
            units += write_units(item_size(projected))
        with self._lock:
            self.write[table] += units
            self.item_bytes[table] += size
            self.item_writes[table] += 1

    def _read(self, table: str, items: list[dict[str, Any]], consistent: bool, x: int = 1) -> None:
        size = sum(item_size(i) for i in items)
        with self._lock:
            self.read[table] += x * read_units(size, consistent)

    def record(self, operation: str, params: dict[str, Any], result: dict[str, Any]) -> None:
        """Keep one DynamoDB call that succeeded, to be sized by `settle`."""
        with self._lock:
            self.calls.append((operation, params, result))

    def settle(self, call: Any) -> None:
        """Size every recorded call; `call(operation, params)` makes an uncounted DynamoDB call."""
        with self._lock:
            recorded, self.calls = self.calls, []
        for operation, params, result in recorded:
            self._size(call, operation, params, result)

    def _size(self, call: Any, operation: str, params: dict[str, Any], result: dict[str, Any]) -> None:
        if operation in _WRITES:
            self._one_write(call, operation, params, 1)
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                self._one_write(call, kind, body, 2)
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        self._write(call, table, {}, request["PutRequest"]["Item"], None, 1)
                    else:
                        self._write(call, table, request["DeleteRequest"]["Key"], None, None, 1)
        elif operation in {"GetItem", "Query", "Scan"}:
            items = [result["Item"]] if result.get("Item") else result.get("Items", [])
            self._read(params["TableName"], items, bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for table, items in result.get("Responses", {}).items():
                consistent = bool(params["RequestItems"].get(table, {}).get("ConsistentRead"))
                self._read(table, items, consistent)
        elif operation == "TransactGetItems":
            for asked, entry in zip(params["TransactItems"], result.get("Responses", []), strict=False):
                ((_, body),) = asked.items()
                self._read(body["TableName"], [entry.get("Item") or {}], True, 2)

    def _one_write(self, call: Any, kind: str, body: dict[str, Any], x: int) -> None:
        table = body["TableName"]
        if kind in {"Put", "PutItem"}:
            self._write(call, table, {}, body["Item"], None, x)
        elif kind in {"Update", "UpdateItem"}:
            touched = set(body.get("ExpressionAttributeNames", {}).values()) or None
            self._write(call, table, body["Key"], None, touched, x)
        elif kind in {"Delete", "DeleteItem"}:
            self._write(call, table, body["Key"], None, None, x)
        elif kind == "ConditionCheck":
            # A transaction's condition check costs the write units of the item it reads.
            item = call("GetItem", {"TableName": table, "Key": body["Key"], "ConsistentRead": True}).get("Item")
            with self._lock:
                self.write[table] += x * write_units(item_size(item or body["Key"]))

    def summary(self, orders: int) -> dict[str, Any]:
        """Per order: write and read units, by table and in total, and the mean item size written."""
        return {
            "write_units_per_order": round(sum(self.write.values()) / orders, 2),
            "read_units_per_order": round(sum(self.read.values()) / orders, 2),
            "write_units_by_table": {t: round(u / orders, 2) for t, u in sorted(self.write.items())},
            "read_units_by_table": {t: round(u / orders, 2) for t, u in sorted(self.read.items())},
            "mean_item_bytes": {
                t: round(self.item_bytes[t] / self.item_writes[t])
                for t in sorted(self.item_writes)
                if self.item_writes[t]
            },
        }
