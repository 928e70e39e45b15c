"""The embedded DynamoDB's faster Query (devstack.moto_queries) answers exactly as moto does: the same pages,
items and order, for the table and for indexes, with and without sort key conditions, either direction."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.dynamodb.models import table as tables

from devstack import moto_queries

PARTITIONS = ["a", "b", "c"]
TEXT = st.text(alphabet="abcxyz09_", min_size=1, max_size=4)
ITEMS = st.lists(
    st.fixed_dictionaries(
        {"p": st.sampled_from(PARTITIONS), "r": st.integers(-50, 50), "x": TEXT, "y": st.sampled_from(["k", "l"])}
    ),
    max_size=40,
)
QUERIES = st.lists(
    st.tuples(
        st.sampled_from([None, "by_x", "by_y"]),
        st.sampled_from([None, "=", "<", "<=", ">", ">=", "between", "begins_with"]),
        st.integers(-50, 50),
        TEXT,
        st.booleans(),
        st.integers(1, 12),
    ),
    min_size=1,
    max_size=6,
)


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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, queries=QUERIES)
def test_the_same_pages_as_moto(items: list[dict[str, Any]], queries: list[tuple[Any, ...]]) -> None:
    installed = {name: getattr(tables.Table, name) for name in ("query", "all_items", "sorted_items")}
    originals = moto_queries.ORIGINALS or installed
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        table = f"T{uuid.uuid4().hex}"
        _create(client, table)
        for item in items:
            client.put_item(
                TableName=table,
                Item={"p": {"S": item["p"]}, "r": {"N": str(item["r"])}, "x": {"S": item["x"]}, "y": {"S": item["y"]}},
            )
        try:
            for name, method in originals.items():
                setattr(tables.Table, name, method)
            expected = [_pages(client, table, query) for query in queries]
            moto_queries.install()
            for name in installed:
                assert getattr(tables.Table, name) is not originals[name]
            assert [_pages(client, table, query) for query in queries] == expected
        finally:
            for name, method in installed.items():
                setattr(tables.Table, name, method)
            client.delete_table(TableName=table)
