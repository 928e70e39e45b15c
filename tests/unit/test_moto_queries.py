"""The embedded DynamoDB's faster Query (devstack.moto_queries) answers exactly as moto does: the same pages,
items and order, for the table and for indexes, with and without sort key conditions, either direction."""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.dynamodb.models import table as tables

from devstack import moto_queries
from tests.unit.domain.shop import examples

PARTITIONS = ["a", "b", "c"]
TEXT = st.text(alphabet="abcxyz09_", min_size=1, max_size=4)
ITEMS = st.lists(
    st.fixed_dictionaries(
        {"p": st.sampled_from(PARTITIONS), "r": st.integers(-50, 50), "x": TEXT, "y": st.sampled_from(["k", "l"])}
    ),
    max_size=40,
)


def _queries(numbers: st.SearchStrategy[int], text: st.SearchStrategy[str], most: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(
        st.tuples(
            st.sampled_from([None, "by_x", "by_y"]),
            st.sampled_from([None, "=", "<", "<=", ">", ">=", "between", "begins_with"]),
            numbers,
            text,
            st.booleans(),
            st.integers(1, 12),
        ),
        min_size=1,
        max_size=most,
    )


QUERIES = _queries(st.integers(-50, 50), TEXT, 6)


def _create(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in (("p", "S"), ("r", "N"), ("x", "S"), ("y", "S"))
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_x",
                "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "x", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "by_y",
                "KeySchema": [{"AttributeName": "y", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _pages(client: Any, table: str, query: tuple[Any, ...]) -> list[Any]:
    index, comparison, number, text, forward, limit = query
    partition = ("y", {"S": "k"}) if index == "by_y" else ("p", {"S": "a"})
    sort_name, value = ("x", {"S": text}) if index == "by_x" else ("r", {"N": str(number)})
    values: dict[str, Any] = {":h": partition[1]}
    condition = f"{partition[0]} = :h"
    if comparison == "between":
        condition += f" AND {sort_name} BETWEEN :lo AND :hi"
        values[":lo"] = value
        values[":hi"] = {"S": text + "z"} if index == "by_x" else {"N": str(number + 20)}
    elif comparison == "begins_with":
        if index != "by_x":
            return []  # only strings have prefixes
        condition += f" AND begins_with({sort_name}, :v)"
        values[":v"] = value
    elif comparison:
        condition += f" AND {sort_name} {comparison} :v"
        values[":v"] = value
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": forward,
        "Limit": limit,
        **({"IndexName": index} if index else {}),
    }
    pages = []
    while True:
        answer = client.query(**request)
        pages.append((answer["Items"], answer.get("LastEvaluatedKey"), answer["Count"], answer["ScannedCount"]))
        if "LastEvaluatedKey" not in answer:
            return pages
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


METHODS = ("query", "all_items", "sorted_items")


@contextlib.contextmanager
def _table(items: list[dict[str, Any]]) -> Iterator[tuple[Any, str]]:
    """A moto table holding the items (a client and its name); moto's methods are as before afterwards."""
    installed = {name: getattr(tables.Table, name) for name in METHODS}
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        table = f"T{uuid.uuid4().hex}"
        _create(client, table)
        for item in items:
            _write(client, table, ("put", item))
        try:
            yield client, table
        finally:
            for name, method in installed.items():
                setattr(tables.Table, name, method)
            client.delete_table(TableName=table)


def _moto_then_ours(client: Any, table: str, queries: list[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    """Every query's pages as moto answers them, then as ours do (installed from then on)."""
    originals = moto_queries.ORIGINALS or {name: getattr(tables.Table, name) for name in METHODS}
    for name, method in originals.items():
        setattr(tables.Table, name, method)
    expected = [_pages(client, table, query) for query in queries]
    moto_queries.install()
    assert all(getattr(tables.Table, name) is not originals[name] for name in METHODS)
    return expected, [_pages(client, table, query) for query in queries]


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, queries=QUERIES)
def test_the_same_pages_as_moto(items: list[dict[str, Any]], queries: list[tuple[Any, ...]]) -> None:
    with _table(items) as (client, table):
        expected, answered = _moto_then_ours(client, table, queries)
        assert answered == expected


# Few keys and values, mostly in the partition queried: writes mostly move, drop and bring back items the
# queries have already seen, and move them in and out of the ranges queried.
SORT_KEYS = st.integers(-6, 6)
FEW_TEXTS = st.sampled_from(["b", "ba", "c", "d", "x"])
MOSTLY_A = st.sampled_from(["a", "a", "a", "b"])
FEW_ITEMS = st.lists(
    st.fixed_dictionaries({"p": MOSTLY_A, "r": SORT_KEYS, "x": FEW_TEXTS, "y": st.sampled_from(["k", "l"])}),
    max_size=20,
)
FEW_QUERIES = _queries(SORT_KEYS, FEW_TEXTS, 3)
WRITES = st.lists(
    st.one_of(
        st.tuples(st.just("put"), FEW_ITEMS.filter(bool).map(lambda items: items[0])),
        st.tuples(st.just("set_x"), MOSTLY_A, SORT_KEYS, FEW_TEXTS),
        st.tuples(st.just("set_x"), MOSTLY_A, SORT_KEYS, FEW_TEXTS),
        st.tuples(st.just("remove_x"), MOSTLY_A, SORT_KEYS),
        st.tuples(st.just("delete"), MOSTLY_A, SORT_KEYS),
    ),
    min_size=1,
    max_size=10,
)


def _write(client: Any, table: str, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "put":
        item = step[1]
        client.put_item(
            TableName=table,
            Item={"p": {"S": item["p"]}, "r": {"N": str(item["r"])}, "x": {"S": item["x"]}, "y": {"S": item["y"]}},
        )
        return
    key = {"p": {"S": step[1]}, "r": {"N": str(step[2])}}
    if kind == "delete":
        client.delete_item(TableName=table, Key=key)
    elif kind == "set_x":
        client.update_item(
            TableName=table, Key=key, UpdateExpression="SET x = :x", ExpressionAttributeValues={":x": {"S": step[3]}}
        )
    else:
        client.update_item(TableName=table, Key=key, UpdateExpression="REMOVE x")


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(items=FEW_ITEMS, queries=FEW_QUERIES, writes=WRITES)
@example(  # an item already placed moves into the range queried
    items=[{"p": "a", "r": r, "x": "b", "y": "k"} for r in range(5)],
    queries=[("by_x", ">=", 0, "c", True, 10)],
    writes=[("set_x", "a", 2, "x")],
)
def test_partitions_kept_sorted_between_queries_follow_every_write(
    items: list[dict[str, Any]], queries: list[tuple[Any, ...]], writes: list[tuple[Any, ...]], monkeypatch: Any
) -> None:
    # Every partition is kept sorted, however small, and moved items are re-placed one by one however
    # many moved; each write (a move, an item added, dropped, leaving or joining an index) is followed
    # by every query, answered from what the previous queries left sorted.
    monkeypatch.setattr(moto_queries, "SORTED_FROM", 0)
    monkeypatch.setattr(moto_queries, "RESORT_SHARE", math.inf)
    with _table(items) as (client, table):
        for write in [None, *writes]:
            if write:
                _write(client, table, write)
            expected, answered = _moto_then_ours(client, table, queries)
            assert answered == expected, write
