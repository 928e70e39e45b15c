"""The embedded DynamoDB's fast responses (devstack.moto_fast_json) are moto's own: for every result of the hot
operations, the same status, headers and body (to the byte, so the same x-amz-crc32) as moto's generic serializer
gives for the same result; and what the fast path does not reproduce, moto's serializer answers."""

from __future__ import annotations

import binascii
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core.responses import ActionResult, BaseResponse, PaginatedResult
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from devstack import moto_fast_json
from tests.unit.domain.shop import examples

# The operations the fast path must answer (every successful response of theirs).
HOT = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
    "GetRecords",
}
NAMES = st.text(min_size=1, max_size=5)  # any Unicode but lone surrogates, as DynamoDB takes
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(-(10**6), 10**6, allow_nan=False, allow_infinity=False, places=3).map(str),
)
SCALARS = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=12)),
    st.builds(lambda n: {"N": n}, NUMBERS),
    st.builds(lambda b: {"B": b}, st.binary(max_size=24)),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=6), min_size=1, max_size=4)),
    st.builds(lambda s: {"NS": [str(n) for n in sorted(s)]}, st.sets(st.integers(-999, 999), min_size=1, max_size=4)),
    st.builds(lambda s: {"BS": sorted(s)}, st.sets(st.binary(min_size=1, max_size=8), min_size=1, max_size=3)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(NAMES, inner, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=10,
)
ATTRIBUTES = st.dictionaries(NAMES.filter(lambda name: name not in ("pk", "sk")), VALUES, min_size=1, max_size=5)
ITEMS = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.integers(-99, 99), ATTRIBUTES),
    min_size=1,
    max_size=6,
    unique_by=lambda i: i[:2],
)


@contextlib.contextmanager
def _compared() -> Iterator[tuple[Counter[str], Counter[str]]]:
    """From here on, every DynamoDB result moto serializes is also answered by the fast path, which must give the
    same response; the client gets the fast one. Yields the operations the fast path answered, and declined."""
    answered: Counter[str] = Counter()
    declined: Counter[str] = Counter()
    generic = BaseResponse.serialized

    def serialized(self: Any, action_result: Any) -> Any:
        fast = moto_fast_json.respond(self, action_result)
        expected = generic(self, action_result)
        action = self._get_action()
        if fast is None:
            if action in HOT and isinstance(action_result.result, dict):
                declined[action] += 1
            return expected
        status, headers, body = fast
        assert (status, headers, json.loads(body)) == (expected[0], expected[1], json.loads(expected[2])), action
        assert body == expected[2], action  # the same bytes: the same x-amz-crc32
        answered[action] += 1
        return fast

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoHandler, "serialized", serialized)
        patch.setattr(DynamoDBStreamsHandler, "serialized", serialized)
        yield answered, declined


def _check_headers(response_dict: dict[str, Any], **_: Any) -> None:
    """What the client receives: the CRC32 moto's `amz_crc32` adds is the body's, a request id, DynamoDB's JSON."""
    assert int(response_dict["headers"]["x-amz-crc32"]) == binascii.crc32(response_dict["body"])
    assert response_dict["headers"]["x-amzn-requestid"]
    _check_stream_headers(response_dict)


def _check_stream_headers(response_dict: dict[str, Any], **_: Any) -> None:
    """DynamoDB Streams' answers (moto's too) carry neither a CRC32 nor a request id: DynamoDB's JSON."""
    headers = response_dict["headers"]
    if response_dict["status_code"] == 200:
        assert headers["content-type"] == "application/x-amz-json-1.0"


@contextlib.contextmanager
def _table() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.meta.events.register("before-parse.dynamodb", _check_headers)
        table = f"T{uuid.uuid4().hex}"
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        try:
            yield client, table
        finally:
            client.delete_table(TableName=table)


def _key(pk: str, sk: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def _fails(code: str, call: Any, **request: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as error:
        call(**request)
    assert error.value.response["Error"]["Code"] == code
    return error.value.response


def _hot_operations(client: Any, table: str, items: list[tuple[str, int, dict[str, Any]]], value: Any) -> None:
    """Each hot operation, on the items written, with the results each can give."""
    (pk, sk, first), missing = items[0], _key("z", 0)
    names = {f"#n{i}": name for i, name in enumerate(first)}
    for item_pk, item_sk, attributes in items:
        client.put_item(TableName=table, Item={**_key(item_pk, item_sk), **attributes})
    client.put_item(
        TableName=table, Item={**_key(pk, sk), **first}, ReturnValues="ALL_OLD", ReturnConsumedCapacity="TOTAL"
    )
    client.put_item(TableName=table, Item={**_key("y", 0), **first}, ReturnValues="ALL_OLD")
    old = _fails(
        "ConditionalCheckFailedException",
        client.put_item,
        TableName=table,
        Item=_key(pk, sk),
        ConditionExpression="attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    assert old["Item"] == {**_key(pk, sk), **first}

    client.get_item(TableName=table, Key=_key(pk, sk), ReturnConsumedCapacity="INDEXES")
    client.get_item(
        TableName=table, Key=_key(pk, sk), ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
    )
    client.get_item(TableName=table, Key=missing)

    for returns in ("NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
        for key in (_key(pk, sk), _key("x", len(returns))):
            client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #v = :v",
                ExpressionAttributeNames={"#v": next(iter(first))},
                ExpressionAttributeValues={":v": value},
                ReturnValues=returns,
            )
    _fails(
        "ConditionalCheckFailedException",
        client.update_item,
        TableName=table,
        Key=_key(pk, sk),
        UpdateExpression="REMOVE #v",
        ConditionExpression="attribute_not_exists(pk)",
        ExpressionAttributeNames={"#v": next(iter(first))},
    )

    query = {"TableName": table, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": pk}}}
    client.query(**query, Limit=1, ReturnConsumedCapacity="TOTAL")  # a LastEvaluatedKey
    client.query(**query, ScanIndexForward=False, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
    client.query(**query, Select="COUNT")
    client.scan(TableName=table, Limit=2)
    client.scan(TableName=table, ReturnConsumedCapacity="INDEXES")

    keys = [_key(item_pk, item_sk) for item_pk, item_sk, _ in items]
    client.batch_get_item(RequestItems={table: {"Keys": [*keys, missing]}}, ReturnConsumedCapacity="TOTAL")
    client.batch_get_item(
        RequestItems={
            table: {"Keys": keys, "ProjectionExpression": "pk, #n0", "ExpressionAttributeNames": {"#n0": names["#n0"]}}
        }
    )
    client.transact_get_items(
        TransactItems=[{"Get": {"TableName": table, "Key": key}} for key in (*keys, missing)],
        ReturnConsumedCapacity="INDEXES",
    )

    client.batch_write_item(
        RequestItems={
            table: [{"PutRequest": {"Item": {**_key("w", 1), "v": value}}}, {"DeleteRequest": {"Key": _key("y", 0)}}]
        },
        ReturnConsumedCapacity="TOTAL",
    )
    writes = [
        {"Put": {"TableName": table, "Item": {**_key("w", 2), "v": value}}},
        {
            "Update": {
                "TableName": table,
                "Key": _key("w", 1),
                "UpdateExpression": "SET v = :v",
                "ExpressionAttributeValues": {":v": value},
            }
        },
        {"ConditionCheck": {"TableName": table, "Key": _key(pk, sk), "ConditionExpression": "attribute_exists(pk)"}},
    ]
    client.transact_write_items(TransactItems=writes)
    writes[2]["ConditionCheck"]["ConditionExpression"] = "attribute_not_exists(pk)"
    _fails("TransactionCanceledException", client.transact_write_items, TransactItems=writes)

    client.delete_item(TableName=table, Key=_key(pk, sk), ReturnValues="ALL_OLD", ReturnConsumedCapacity="TOTAL")
    client.delete_item(TableName=table, Key=_key("w", 1))
    client.delete_item(TableName=table, Key=missing, ReturnValues="ALL_OLD")
    _stream_records(client, table)


def _stream_records(client: Any, table: str) -> None:
    """Every record the writes above left in the table's stream (inserts, updates, removes: old and new images
    of every attribute type, and each record's creation time), a few at a time and then the rest."""
    # (moto's in-process mock routes DynamoDB Streams only when the endpoint is given: a 404 otherwise.)
    endpoint = "https://streams.dynamodb.us-east-1.amazonaws.com"
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=endpoint)
    streams.meta.events.register("before-parse.dynamodbstreams", _check_stream_headers)
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    first = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=3)
    rest = streams.get_records(ShardIterator=first["NextShardIterator"])
    assert first["Records"] and all("ApproximateCreationDateTime" in r["dynamodb"] for r in rest["Records"])


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, value=VALUES)
def test_the_hot_operations_answer_as_moto_does(items: list[tuple[str, int, dict[str, Any]]], value: Any) -> None:
    with _table() as (client, table), _compared() as (answered, declined):
        _hot_operations(client, table, items, value)
    assert set(answered) == HOT
    assert not declined  # no successful response of theirs went to moto's serializer


def _handler(action: str) -> Any:
    handler = DynamoHandler()
    handler.querystring = {}
    handler.headers = {"X-Amz-Target": f"DynamoDB_20120810.{action}", "Content-Type": "application/x-amz-json-1.0"}
    handler.response_headers = {"server": "amazon.com"}
    return handler


def _generic(handler: Any, result: Any) -> Any:
    try:
        return BaseResponse.serialized(handler, result)
    except Exception as error:
        return error


# Results shaped as moto's, with what the serializer has to drop, keep, convert or refuse: None, keys of no
# member (some that an alias of the serializer reads), empty lists and maps, numbers as strings, blobs as str.
ODD = st.one_of(
    st.none(), st.text(max_size=3), st.binary(max_size=3), st.integers(), st.floats(allow_nan=False), st.booleans()
)
KEYS = st.text(min_size=1, max_size=3)
LOOSE_VALUES = st.recursive(
    st.one_of(
        SCALARS.map(dict),  # (not one of SCALARS' eight: the odd values below are drawn as often)
        st.builds(lambda kind, odd: {kind: odd}, st.sampled_from(["S", "N", "B", "BOOL", "NULL", "X", "s"]), ODD),
        st.builds(lambda value, kind: {**value, kind: None}, SCALARS, st.sampled_from(["S", "N", "B", "BOOL", "L"])),
        st.builds(lambda kind, odd: {kind: odd}, st.sampled_from(["SS", "NS", "BS"]), st.lists(ODD, max_size=3)),
    ),
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(KEYS, st.one_of(inner, st.none()), max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(st.one_of(inner, st.none()), max_size=3)),
    ),
    max_leaves=8,
)
LOOSE_ITEMS = st.dictionaries(KEYS, LOOSE_VALUES, max_size=4)
CAPACITY = st.fixed_dictionaries(
    {
        "TableName": st.one_of(st.text(max_size=3), st.none()),
        "CapacityUnits": st.one_of(st.floats(0, 9), st.integers(0, 9), st.just("2")),
    },
    optional={"Table": st.fixed_dictionaries({"CapacityUnits": st.floats(0, 9)}), "units": st.just(1)},
)
CAPACITIES = st.lists(CAPACITY, max_size=2)
WRITTEN = {"Attributes": LOOSE_ITEMS, "ConsumedCapacity": CAPACITY, "ItemCollectionMetrics": st.just({})}
READ = {
    "Items": st.lists(LOOSE_ITEMS, max_size=3),
    "Count": st.one_of(st.integers(0, 9), st.just("3")),
    "ScannedCount": st.integers(0, 9),
    "LastEvaluatedKey": LOOSE_ITEMS,
    "ConsumedCapacity": CAPACITY,
}
MEMBERS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "GetItem": {"Item": LOOSE_ITEMS, "ConsumedCapacity": CAPACITY},
    "PutItem": WRITTEN,
    "UpdateItem": WRITTEN,
    "DeleteItem": WRITTEN,
    "Query": READ,
    "Scan": READ,
    "BatchGetItem": {
        "Responses": st.dictionaries(KEYS, st.lists(LOOSE_ITEMS, max_size=2), max_size=2),
        "UnprocessedKeys": st.one_of(
            st.just({}),
            st.dictionaries(
                KEYS, st.builds(lambda keys: {"Keys": keys}, st.lists(LOOSE_ITEMS, max_size=2)), max_size=1
            ),
        ),
        "ConsumedCapacity": CAPACITIES,
    },
    "BatchWriteItem": {
        "UnprocessedItems": st.just({}),
        "ItemCollectionMetrics": st.just({}),
        "ConsumedCapacity": CAPACITIES,
    },
    "TransactGetItems": {
        "Responses": st.lists(st.one_of(st.just({}), st.builds(lambda item: {"Item": item}, LOOSE_ITEMS)), max_size=3),
        "ConsumedCapacity": CAPACITIES,
    },
    "TransactWriteItems": {"ConsumedCapacity": CAPACITIES, "ItemCollectionMetrics": st.just({})},
}
# What moto's results also hold (left out), and None members (left out), and keys an alias of the serializer reads.
OTHERS: dict[str, st.SearchStrategy[Any]] = {
    "ConsumedCapacityUnits": st.just(0.5),
    "Responses": st.none(),
    "Item": st.none(),
    "items": st.just([]),
    "count": st.just(1),
}
RESULTS = st.sampled_from(sorted(MEMBERS)).flatmap(
    lambda action: st.tuples(
        st.just(action),
        st.fixed_dictionaries({}, optional={**OTHERS, **MEMBERS[action]}),
        st.sampled_from([ActionResult, DynamoResult]),
    )
)


@settings(max_examples=examples(300), deadline=None)
@given(case=RESULTS)
def test_any_result_answers_as_moto_does_or_goes_to_moto(case: tuple[str, dict[str, Any], type[ActionResult]]) -> None:
    action, result, kind = case
    handler = _handler(action)
    fast = moto_fast_json.respond(handler, kind(result))
    expected = _generic(handler, kind(result))
    event("declined" if fast is None else "answered")
    assert fast is None or fast == expected


@pytest.mark.parametrize(
    ("action", "result"),
    [
        ("GetItem", ActionResult(ValueError("an error"))),
        ("Query", PaginatedResult({"Items": []})),
        ("Query", ActionResult(None)),
        ("Query", ActionResult({"Items": [], "items": [{"pk": {"S": "x"}}]})),  # an alias of Items
        ("GetItem", ActionResult({"Item": {"m": {"M": {"": {"S": "x"}}}}})),  # moto writes {"S": "x"} into the map
        ("GetItem", ActionResult({"Item": {"t": {"S": "x", "s": "y"}}})),
        ("Query", ActionResult({"Items": ({"a": {"S": "x"}},)})),
        ("DescribeTable", ActionResult({"Table": {}})),
    ],
)
def test_what_the_fast_path_does_not_reproduce_goes_to_moto(action: str, result: ActionResult) -> None:
    assert moto_fast_json.respond(_handler(action), result) is None


def test_installed_in_place_of_moto_serializer_for_dynamodb_only() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoHandler, "serialized", BaseResponse.serialized)
        patch.setattr(DynamoDBStreamsHandler, "serialized", BaseResponse.serialized)
        generic = BaseResponse.serialized
        moto_fast_json.install()
        installed = DynamoHandler.serialized
        moto_fast_json.install()  # once only
        assert DynamoHandler.serialized is installed and getattr(installed, "fast_json", False)
        assert getattr(DynamoDBStreamsHandler.serialized, "fast_json", False)
        assert BaseResponse.serialized is generic  # the other services' handlers serialize as before
        handler = _handler("GetItem")
        assert installed(handler, DynamoResult({"Item": {"b": {"B": b"\x00"}}}))[2] == '{"Item": {"b": {"B": "AA=="}}}'
        quirk = {"Item": {"m": {"M": {"": {"S": "x"}}}}}  # moto's serializer answers: {"M": {"S": "x"}}
        assert installed(handler, DynamoResult(quirk)) == _generic(handler, DynamoResult(quirk))
    assert DynamoHandler.serialized is DynamoDBStreamsHandler.serialized is BaseResponse.serialized
