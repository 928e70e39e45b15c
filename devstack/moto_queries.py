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
  never counted nor returned either way, and the two ends keep moto's LastEvaluatedKey where it gives one);
- it finds those by bisecting the partition's items kept sorted by the query's order between queries (a
  table's partition, or an index's). A Query still looks at every item of the partition, only to see that
  its key attributes are the objects they were (moto replaces an attribute's value, never edits it), and
  re-places the few that changed; a 20,000-item partition took 0.27 s a Query, comparing every item.
"""

from __future__ import annotations

import bisect
import heapq
import inspect
import threading
import weakref
from decimal import Decimal
from operator import itemgetter
from typing import Any

# The candidate items of the Query the current request thread is serving, by table.
_partition = threading.local()
# Each table's partitions kept in order between queries: {(partition, *attributes of the order): _Sorted},
# for partitions of SORTED_FROM items or more (a smaller one is compared item by item, as fast).
_SORTED: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], _Sorted]] = weakref.WeakKeyDictionary()
_SORTED_LOCK = threading.Lock()
SORTED_FROM = 64
RESORT_SHARE = 1 / 8  # more of a partition's items moved than this: sorted anew rather than one by one
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


class _Sorted:
    """One partition's items that have every attribute of an order, sorted by it (`keys`, and `items` in
    step), with what each item's attributes were when it was placed (`placed`, by id of the item)."""

    __slots__ = ("keys", "items", "placed")

    def __init__(self) -> None:
        self.keys: list[tuple[Any, ...]] = []
        self.items: list[Any] = []
        self.placed: dict[int, tuple[Any, tuple[Any, ...], tuple[Any, ...] | None]] = {}

    def refresh(self, bucket: list[Any], order: tuple[str, ...]) -> None:
        """Bring the order up to date with the partition's items as they are now."""
        placed, find = self.placed, self.placed.get
        entries: list[tuple[Any, tuple[Any, ...], tuple[Any, ...] | None]] = []  # every item's, in bucket order
        changed: list[tuple[Any, Any]] = []  # (its new entry, its entry before or None) of each item that moved
        for item in bucket:
            # moto sets an attribute to a new value object, never edits one: the same objects (or equal
            # ones), the same place. `placed` holds its items, so an id is not reused while it is there.
            seen = tuple(map(item.attrs.get, order))
            was = find(id(item))
            try:
                same = was is not None and was[1] == seen
            except AttributeError:  # DynamoType == None (an attribute added or removed)
                same = False
            if was is not None and same:
                entries.append(was)
            else:
                entry = (item, seen, _order_key(seen))
                entries.append(entry)
                changed.append((entry, was))
        if not changed and len(entries) == len(placed):
            return
        updated = sum(1 for _, was in changed if was is not None)
        if len(entries) - len(changed) + updated != len(placed) or len(changed) > RESORT_SHARE * len(bucket):
            # Items left the partition (which ones would take another pass to find), or many moved: anew,
            # from the keys just computed or kept.
            self.placed = {id(entry[0]): entry for entry in entries}
            ranked = sorted((key, index, item) for index, (item, _, key) in enumerate(entries) if key)
            self.keys = [key for key, _, _ in ranked]
            self.items = [item for _, _, item in ranked]
            return
        for entry, was in changed:
            if was is not None and was[2] is not None:
                at = bisect.bisect_left(self.keys, was[2])
                while self.items[at] is not was[0]:
                    at += 1
                del self.keys[at], self.items[at]
            item, _, key = entry
            placed[id(item)] = entry
            if key is not None:
                at = bisect.bisect_left(self.keys, key)
                self.keys.insert(at, key)
                self.items.insert(at, item)


def _order_key(seen: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """An item's place in the order, or None when it lacks one of its attributes (no index holds it)."""
    for value in seen:
        if value is None:
            return None
    return tuple(map(_plain, seen))


def _span(keys: list[tuple[Any, ...]], at: int, comparison: str, bounds: list[Any]) -> tuple[int, int] | None:
    """Where the keys whose element `at` a comparison matches lie among sorted keys, in which that element
    is sorted too (None: a comparison this does not handle)."""
    value = itemgetter(at)

    def left(bound: Any) -> int:
        return bisect.bisect_left(keys, bound, key=value)

    def right(bound: Any) -> int:
        return bisect.bisect_right(keys, bound, key=value)

    if comparison in ("EQ", "="):
        return left(bounds[0]), right(bounds[0])
    if comparison in ("LT", "<"):
        return 0, left(bounds[0])
    if comparison in ("LE", "<="):
        return 0, right(bounds[0])
    if comparison in ("GT", ">"):
        return right(bounds[0]), len(keys)
    if comparison in ("GE", ">="):
        return left(bounds[0]), len(keys)
    if comparison == "BETWEEN":
        low = left(bounds[0])
        return low, max(low, right(bounds[1]))
    if comparison == "BEGINS_WITH" and isinstance(bounds[0], (str, bytes)):
        low = end = left(bounds[0])
        while end < len(keys) and type(keys[end][at]) is type(bounds[0]) and keys[end][at].startswith(bounds[0]):
            end += 1
        return low, end
    return None


def _sorted_matches(
    table: Any, partition: Any, name: str, order: list[str], comparison: str, bounds: list[Any], bucket: list[Any]
) -> list[Any] | None:
    """What matching() answers, from the partition kept sorted (None: when that cannot answer it)."""
    at = order.index(name) if name in order else -1
    # Sorted by the order, the condition's attribute is sorted only if all before it are the partition's.
    if len(bucket) < SORTED_FROM or at < 0 or any(attribute != table.hash_key_attr for attribute in order[:at]):
        return None
    with _SORTED_LOCK:
        partitions = _SORTED.setdefault(table, {})
        kept = partitions.setdefault((_plain(partition), *order), _Sorted())
        try:
            kept.refresh(bucket, tuple(order))
            span = _span(kept.keys, at, comparison, bounds)
        except TypeError:
            # Values or a bound of another type than the others: moto's own comparisons decide (and the
            # partition is sorted anew next time).
            partitions.pop((_plain(partition), *order), None)
            return None
        if span is None:
            return None
        low, high = span
        items = kept.items
        found = items[low:high]
    # Of the others, the first and the last in the query's order (see matching()).
    if low > 0 or high < len(items):
        first, last = items[0] if low > 0 else items[high], items[-1] if high < len(items) else items[low - 1]
        found += [first] if first is last else [first, last]
    return found


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

    def matching(self: Any, arguments: dict[str, Any], partition: Any, candidates: list[Any]) -> list[Any]:
        """The candidates the range condition matches, and of the others the first and the last in the
        query's order: moto ends a page with a LastEvaluatedKey when any item follows the page's last
        match, matching or not, and either of those two follows it if any other does."""
        found = range_condition(self, arguments)
        if found is None:
            return candidates
        name, order = found
        bounds = [_plain(bound) for bound in arguments.get("range_objs") or []]
        comparison = arguments["range_comparison"]
        quick = _sorted_matches(self, partition, name, order, comparison, bounds, candidates)
        if quick is not None:
            return quick
        # DynamoType.compare, with each bound converted once rather than once per item.
        compare = get_comparison_func(comparison)
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
        candidates = matching(self, arguments, value, candidates)
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
