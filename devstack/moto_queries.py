"""The embedded DynamoDB answers a Query from the items it can match, as DynamoDB does (devstack.moto_dynamodb
installs this).

moto 5.2.5 answers every Query from `Table.all_items()`: the whole table, sorted by comparing DynamoType
objects, each comparison converting both values again; an index query then sorts its candidates once more
the same way. A 99-item page of a 40,000-item table took 4 s, where DynamoDB takes milliseconds, so work
that DynamoDB finishes in a fraction of its function's timeout timed out here for the dev stack's sake.

Three changes, with the same results in the same order:
- items are sorted by their plain values (what DynamoType's comparisons compare), converted once each;
- a Query on the table, or on an index partitioned by the table's own partition key, starts from that one
  partition's items instead of the whole table;
- of those, it starts from the items its sort key condition matches, and the first and last of the others
  (moto sized every item it passed over on its way to the first match; an item that does not match is
  never counted nor returned either way, and the two ends keep moto's LastEvaluatedKey where it gives one).
"""

from __future__ import annotations

import heapq
import inspect
import threading
from decimal import Decimal
from typing import Any

# The candidate items of the Query the current request thread is serving, by table.
_partition = threading.local()
# moto's own methods, as they were before install() first replaced them (empty until then), and ours.
ORIGINALS: dict[str, Any] = {}
_REPLACEMENTS: dict[str, Any] = {}


def _plain(value: Any) -> Any:
    """What DynamoType's comparisons compare (its cast_value), without the property's chain of type checks
    for the three types a key can have."""
    kind = value.type
    if kind == "N":
        return Decimal(value.value)
    return value.value if kind in ("S", "B") else value.cast_value


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _plain_key(item: Any) -> Any:
    range_key = item.range_key
    return (_plain(item.hash_key), _plain(range_key)) if range_key else _plain(item.hash_key)


def install() -> None:
    """Replace moto's Table.query, all_items and sorted_items (ours are made once per process)."""
    import moto.dynamodb.models.table as tables

    table_class = tables.Table
    if not ORIGINALS:
        ORIGINALS.update({name: getattr(table_class, name) for name in ("query", "all_items", "sorted_items")})
        _REPLACEMENTS.update(_replacements(ORIGINALS["query"]))
    for name, method in _REPLACEMENTS.items():
        setattr(table_class, name, method)


def _replacements(original_query: Any) -> dict[str, Any]:
    from moto.dynamodb.comparisons import get_comparison_func

    signature = inspect.signature(original_query)

    def all_items(self: Any) -> list[Any]:
        narrowed = getattr(_partition, "items", None)
        if narrowed is not None and narrowed[0] is self:
            # An index query sorts its candidates itself (sorted_items), by keys that order them all.
            return list(narrowed[1]) if narrowed[2] is not None else sorted(narrowed[1], key=_plain_key)
        items: list[Any] = []
        for hash_set in self.items.values():
            items.extend(hash_set.values() if self.range_key_attr else [hash_set])
        return sorted(items, key=_plain_key)

    def sorted_items(self: Any, hash_key_attrs: list[str], range_key_attrs: list[Any], items: list[Any]) -> list[Any]:
        names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)

        def key(item: Any) -> tuple[Any, ...]:
            return tuple(_plain(item.attrs[name]) for name in names)

        narrowed = getattr(_partition, "items", None)
        if narrowed is not None and narrowed[0] is self and narrowed[2]:
            # A first page: only its items and the few after it can matter (moto reads on until the page
            # is full and stops at the next item; at most two of the candidates do not match).
            take, forward = narrowed[2]
            if take < len(items):
                return sorted(
                    heapq.nsmallest(take, items, key) if forward else heapq.nlargest(take, items, key), key=key
                )
        items.sort(key=key)
        return items

    def partition_value(self: Any, arguments: dict[str, Any]) -> Any:
        """The table partition key value every result must have, or None when the query does not fix one."""
        index_name = arguments.get("index_name")
        if not index_name:
            return arguments.get("hash_key")
        index = {i.name: i for i in self.all_indexes()}.get(index_name)
        if index is None:
            return None  # moto answers with its own validation error
        hashes = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"]
        if hashes != [self.hash_key_attr]:
            return None
        conditions = dict(arguments.get("hash_key_conditions") or [])
        return conditions.get(self.hash_key_attr, arguments.get("hash_key"))

    def range_condition(self: Any, arguments: dict[str, Any]) -> tuple[str, list[str]] | None:
        """The one sort key attribute the query's range condition applies to, and the attributes moto
        orders the query's items by (None: no single range attribute, or no range condition)."""
        conditions = arguments.get("range_key_conditions") or []
        index_name = arguments.get("index_name")
        if not arguments.get("range_comparison") or len(conditions) > 1:
            return None
        if not index_name:
            name = conditions[0][0] if conditions else self.range_key_attr
            return (str(name), [self.range_key_attr]) if name and self.range_key_attr else None
        ranges = [key["AttributeName"] for key in self.get_index(index_name).schema if key["KeyType"] == "RANGE"]
        if len(ranges) != 1:
            return None
        name = conditions[0][0] if conditions else ranges[0]
        order = self._generate_attr_to_sort_by([self.hash_key_attr, self.hash_key_attr], [*ranges, self.range_key_attr])
        return str(name), order

    def matching(self: Any, arguments: dict[str, Any], candidates: list[Any]) -> list[Any]:
        """The candidates the range condition matches, and of the others the first and the last in the
        query's order: moto ends a page with a LastEvaluatedKey when any item follows the page's last
        match, matching or not, and either of those two follows it if any other does."""
        found = range_condition(self, arguments)
        if found is None:
            return candidates
        name, order = found
        # DynamoType.compare, with each bound converted once rather than once per item.
        compare = get_comparison_func(arguments["range_comparison"])
        bounds = [_plain(bound) for bound in arguments.get("range_objs") or []]
        matches, others = [], []
        for item in candidates:
            value = item.attrs.get(name)
            if value is not None and compare(_plain(value), *bounds):
                matches.append(item)
            elif all(item.attrs.get(attribute) is not None for attribute in order):
                others.append(item)
        if others:
            placed = [(tuple(_plain(item.attrs[attribute]) for attribute in order), item) for item in others]
            ends = {id(item): item for _, item in (min(placed, key=_first), max(placed, key=_first))}
            matches.extend(ends.values())
        return matches

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        value = partition_value(self, arguments)
        if value is None:
            return original_query(self, *args, **kwargs)
        found = self.items.get(value)
        if found is None:
            candidates: list[Any] = []
        else:
            candidates = list(found.values()) if self.range_key_attr else [found]
        candidates = matching(self, arguments, candidates)
        # For an index query: how many items its first page needs (None: all of them, or a later page).
        first_page: tuple[Any, ...] | None = None
        if arguments.get("index_name"):
            first_page = ()
            limit = arguments.get("limit")
            if limit and not arguments.get("exclusive_start_key"):
                first_page = (int(limit) + 3, arguments.get("scan_index_forward") is not False)
        previous = getattr(_partition, "items", None)
        _partition.items = (self, candidates, first_page)
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _partition.items = previous

    return {"query": query, "all_items": all_items, "sorted_items": sorted_items}
