"""The embedded DynamoDB's adjustments to moto, applied inside its child process (devstack.moto_backend).

- TransactWriteItems rolls back from a per-item journal instead of deep copies of whole tables;
- the contention model (devstack.contention's ItemGate): an item held by a transaction or out of write
  units cancels a transaction or refuses a single write, as DynamoDB does;
- a write that leaves an item as it was emits no stream record;
- condition and update expressions are parsed once per shape;
- a Query reads only the partition it names (devstack.moto_queries);
- the hot operations' responses skip moto's generic serializer (devstack.moto_fast_json).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from devstack import moto_fast_json, moto_queries
from devstack.contention import ContentionPlan, ItemGate, write_units

# The serialization lock the current request thread holds (set by moto_backend.SerializedApp), and when
# its request arrived, so a long poll can let go of the lock and a transaction knows its arrival.
held = threading.local()


def install(gate: ItemGate) -> None:
    """Apply the DynamoDB adjustments, with `gate` as the contention model."""
    global _gate
    _gate = gate
    _patch_moto_transactions()
    _patch_expression_cache()
    moto_queries.install()
    moto_fast_json.install()


class _TransactionJournal:
    """The items (and stream lengths) a transaction touched, as they were before it wrote them."""

    def __init__(self) -> None:
        self._items: list[tuple[Any, Any, Any, Any]] = []
        self._streams: dict[int, tuple[Any, Any, list[Any], int]] = {}

    def remember(self, table: Any, hash_key: Any, range_key: Any, current: Any, will_mutate: bool) -> None:
        if id(table) not in self._streams:
            shard = table.stream_shard
            records = shard.items if shard is not None else []
            self._streams[id(table)] = (table, shard, records, len(records))
        # UpdateItem edits the stored Item in place; Put and Delete only replace or drop it.
        before = copy.deepcopy(current) if will_mutate and current is not None else current
        self._items.append((table, hash_key, range_key, before))

    def rollback(self) -> None:
        for table, hash_key, range_key, before in reversed(self._items):
            if range_key is not None:
                bucket = table.items[hash_key]
                if before is None:
                    bucket.pop(range_key, None)
                else:
                    bucket[range_key] = before
                if not bucket:
                    table.items.pop(hash_key, None)
            elif before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
        for table, shard, records, length in self._streams.values():
            # If a Lambda event-source mapping already drained the shard, the records are gone anyway.
            if shard is not None and table.stream_shard is shard and shard.items is records:
                del records[length:]
        self._items.clear()
        self._streams.clear()


def _patch_moto_transactions() -> None:
    """Make moto's TransactWriteItems roll back from a per-item journal instead of whole-table deep copies."""
    import moto.dynamodb.comparisons as comparisons
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    # Mirrors moto 5.2.5 DynamoDBBackend.transact_write_items step for step (same checks, same
    # order, same cancellation reasons); only the backup/restore differs, and the contention the
    # ItemGate models (devstack.contention): an item held or out of write units cancels it.
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        journal = _TransactionJournal()
        target_items: set[tuple[str, str]] = set()
        touched: list[Any] = []
        started = time.monotonic()
        arrived = getattr(held, "arrived", started)
        spent: list[tuple[Any, int]] = []

        def check_unicity(table_name: str, key: dict[str, Any]) -> None:
            item = (str(table_name), str(dict(sorted(key.items()))))
            if item in target_items:
                raise MultipleTransactionsException()
            target_items.add(item)

        errors: list[Any] = []
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")

                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                expression_attribute_names = op.get("ExpressionAttributeNames")
                expression_attribute_values = op.get("ExpressionAttributeValues")
                return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]

                check_unicity(table_name, key)

                # What self.get_item(table_name, key) does, keeping the table and key for the journal.
                table = self.get_table(table_name)
                hash_key, range_key = self.get_keys_value(table, key)
                item_id = (str(table_name), hash_key, range_key)
                if _gate.busy(item_id, arrived):
                    errors.append(("TransactionConflict", "Transaction is ongoing for the item", None))
                    continue
                if op_type != "ConditionCheck" and _gate.throttled(item_id):
                    errors.append(("ThrottlingError", _THROTTLED_ITEM, None))
                    continue
                touched.append(item_id)
                current = table.get_item(hash_key, range_key)
                size_before = write_units(None, current, transactional=True)
                journal.remember(table, hash_key, range_key, current, will_mutate=op_type == "Update")

                if condition_expression is not None:
                    condition_op = comparisons.get_filter_expression(
                        condition_expression, expression_attribute_names, expression_attribute_values
                    )
                    if not condition_op.expr(current):
                        if return_values_on_condition_check_failure == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)

                # The condition held just above, under the same lock: moto would parse and check it again.
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                if op_type != "ConditionCheck":
                    after = table.get_item(hash_key, range_key)
                    spent.append((item_id, max(size_before, write_units(None, after, transactional=True))))
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                journal.rollback()
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:
                errors.append((type(e).__name__, str(e), original_item))

        if any(code is not None for code, _, _ in errors):
            journal.rollback()
            raise TransactionCanceledException(errors)
        _gate.hold(touched, started)
        for item_id, units in spent:
            _gate.spend(item_id, units)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _patch_single_writes()
    _patch_no_op_stream_records()


# The embedded DynamoDB's contention (devstack.contention): set by serve() from LIVEDROP_CONTENTION.
_gate = ItemGate(ContentionPlan(0.0, 0.0))
_THROTTLED_ITEM = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your "
    "table or index so please try again shortly."
)
# Set while a PutItem, UpdateItem or DeleteItem request is served (a transaction's own writes are not one).
_single_write = threading.local()


def _patch_single_writes() -> None:
    """PutItem, UpdateItem and DeleteItem on an item past its write rate are refused before they write."""
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    class ThroughputExceeded(DynamodbException):
        def __init__(self) -> None:
            super().__init__("com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", _THROTTLED_ITEM)

    def request(name: str) -> None:
        handle = getattr(DynamoHandler, name)

        def serve_one(self: Any) -> Any:
            _single_write.active = True
            try:
                return handle(self)
            finally:
                _single_write.active = False

        setattr(DynamoHandler, name, serve_one)

    def rated(name: str, key_of: Callable[[Any, Any, tuple[Any, ...]], Any]) -> None:
        write = getattr(DynamoDBBackend, name)

        def rated_write(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            if not getattr(_single_write, "active", False):
                return write(self, table_name, *args, **kwargs)
            table = self.get_table(table_name)
            try:
                hash_key, range_key = self.get_keys_value(table, key_of(table, args[0], args))
            except Exception:
                # A malformed key: moto's own write refuses it with DynamoDB's error.
                return write(self, table_name, *args, **kwargs)
            item_id = (str(table_name), hash_key, range_key)
            if _gate.throttled(item_id):
                raise ThroughputExceeded()
            before = write_units(None, table.get_item(hash_key, range_key))
            result = write(self, table_name, *args, **kwargs)
            _gate.spend(item_id, max(before, write_units(None, table.get_item(hash_key, range_key))))
            return result

        setattr(DynamoDBBackend, name, rated_write)

    def put_key(table: Any, attrs: dict[str, Any], _: Any) -> dict[str, Any]:
        names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
        return {name: attrs[name] for name in names if name in attrs}

    for name in ("put_item", "update_item", "delete_item"):
        request(name)
    rated("put_item", put_key)
    rated("update_item", lambda table, key, _: key)
    rated("delete_item", lambda table, key, _: key)


def _patch_no_op_stream_records() -> None:
    """A write that leaves the item as it was emits no stream record (AWS emits none)."""
    from moto.dynamodb.models.table import StreamShard

    add = StreamShard.add

    def add_if_changed(self: Any, old: Any, new: Any) -> None:
        if old is not None and new is not None and old == new:
            return
        add(self, old, new)

    StreamShard.add = add_if_changed  # type: ignore[method-assign]


EXPRESSION_CACHE_SIZE = 2048


def _patch_expression_cache() -> None:
    """Parse each DynamoDB condition and update expression once, not on every request.

    The app sends a handful of expression shapes over and over. A parsed condition (moto's Op tree)
    embeds its values and is only evaluated, never changed, so it is cached by expression, names
    and values. The update-expression AST that moto's request layer builds only to list the names
    and values used is cached by expression alone; the model layer parses its own copy, because its
    validator rewrites the tree it is given.
    """
    import json
    from functools import lru_cache

    import moto.dynamodb.comparisons as comparisons
    import moto.dynamodb.models as models
    import moto.dynamodb.models.table as tables
    import moto.dynamodb.responses as responses

    original_parser = comparisons.create_condition_expression_parser

    @lru_cache(maxsize=EXPRESSION_CACHE_SIZE)
    def parsed(expr: str | None, names: str, values: str) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
        parser = original_parser(expr, json.loads(names), json.loads(values))
        op = parser.parse()
        return op, tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)

    class _CachedCondition:
        """Stands in for moto's ConditionExpressionParser: parse(), then the names and values it found."""

        def __init__(self, expr: str | None, names: Any, values: Any) -> None:
            self._args = (expr, names, values)
            self.expr_attr_names_found: list[str] = []
            self.expr_attr_values_found: list[str] = []

        def parse(self) -> Any:
            expr, names, values = self._args
            try:
                key = (expr, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True))
            except (TypeError, ValueError):
                parser = original_parser(expr, names, values)
                op = parser.parse()
                self.expr_attr_names_found, self.expr_attr_values_found = (
                    parser.expr_attr_names_found,
                    parser.expr_attr_values_found,
                )
                return op
            op, found_names, found_values = parsed(*key)
            self.expr_attr_names_found, self.expr_attr_values_found = list(found_names), list(found_values)
            return op

    def create_condition_expression_parser(expr: str | None, names: Any, values: Any) -> Any:
        return _CachedCondition(expr, names, values)

    def get_filter_expression(expr: str | None, names: Any, values: Any) -> Any:
        return create_condition_expression_parser(expr, names, values).parse()

    class _CachedUpdateParser:
        # Read through responses: moto.dynamodb.parsing.expressions opts out of type checking as a whole.
        make = staticmethod(lru_cache(maxsize=EXPRESSION_CACHE_SIZE)(responses.UpdateExpressionParser.make))

    for module in (comparisons, models, tables, responses):
        if hasattr(module, "create_condition_expression_parser"):
            module.create_condition_expression_parser = create_condition_expression_parser  # type: ignore[attr-defined]
        if hasattr(module, "get_filter_expression"):
            module.get_filter_expression = get_filter_expression  # type: ignore[attr-defined]
    responses.UpdateExpressionParser = _CachedUpdateParser
