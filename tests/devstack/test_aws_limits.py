"""The embedded DynamoDB refuses and contends where DynamoDB does, with no --faults: overlapping
transactions conflict, a hot item is throttled, a no-op write emits no stream record, a transaction
over 4 MB is refused and ClientRequestToken makes a transaction idempotent (devstack.contention)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack import contention
from devstack.identity import client_kwargs, function_arn, role_arn
from devstack.moto_backend import DYNAMODB, EmbeddedAws

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=32)


@pytest.fixture(scope="module")
def ddb() -> Iterator[Any]:
    # The default plan, whatever the environment says: contention is on by default.
    with mock.patch.dict(os.environ, {contention.ENV_VAR: ""}), EmbeddedAws(group=DYNAMODB) as aws:
        client = boto3.session.Session().client("dynamodb", config=NO_RETRY, **client_kwargs(aws.endpoint))
        client.create_table(
            TableName="Limits",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def bump(pk: str, **extra: Any) -> dict[str, Any]:
    update = {"TableName": "Limits", "Key": key(pk), "UpdateExpression": "ADD n :one"}
    return {"Update": {**update, "ExpressionAttributeValues": {":one": {"N": "1"}}, **extra}}


def count_of(ddb: Any, pk: str) -> int:
    item = ddb.get_item(TableName="Limits", Key=key(pk), ConsistentRead=True).get("Item")
    return int(item["n"]["N"]) if item else 0


def reasons(error: ClientError) -> list[str]:
    return [reason["Code"] for reason in error.response.get("CancellationReasons", [])]


def test_overlapping_transactions_are_cancelled_with_transaction_conflict_on_the_shared_item(ddb: Any) -> None:
    hot, start, conflicted = f"hot-{uuid.uuid4().hex}", threading.Barrier(16), threading.Event()

    def transact(i: int) -> list[str]:
        start.wait(timeout=30)
        answers: list[str] = []
        # Ten each, and on until one conflict was seen (at most a hundred each): on a crowded machine the
        # sixteen clients may take turns for a while before two of them overlap at the embedded DynamoDB.
        while len(answers) < 10 or (not conflicted.is_set() and len(answers) < 100):
            own = f"own-{uuid.uuid4().hex}"
            try:
                ddb.transact_write_items(TransactItems=[bump(own), bump(hot)])
                answers.append("ok")
            except ClientError as error:
                assert error.response["Error"]["Code"] == "TransactionCanceledException"
                assert reasons(error) == ["None", "TransactionConflict"], error.response
                assert count_of(ddb, own) == 0  # a cancelled transaction wrote nothing
                answers.append("conflict")
                conflicted.set()
        return answers

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = [answer for answers in pool.map(transact, range(16)) for answer in answers]
    assert "conflict" in outcomes
    assert count_of(ddb, hot) == outcomes.count("ok")


def test_one_item_takes_a_bounded_write_rate(ddb: Any) -> None:
    # 300 KB is 300 write units: past the item's burst (400 units at 200 a second) within a few writes.
    pk, big = f"big-{uuid.uuid4().hex}", "x" * 300_000
    refused = []
    for _ in range(10):
        try:
            ddb.put_item(TableName="Limits", Item={**key(pk), "blob": {"S": big}})
        except ClientError as error:
            refused.append(error.response["Error"]["Code"])
    assert refused and set(refused) == {"ProvisionedThroughputExceededException"}
    transaction = {"Put": {"TableName": "Limits", "Item": {**key(pk), "blob": {"S": big}}}}
    with pytest.raises(ClientError) as cancelled:
        for _ in range(10):
            ddb.transact_write_items(TransactItems=[transaction])
    assert reasons(cancelled.value) == ["ThrottlingError"]


def stream_records(ddb: Any, pk: str) -> list[str]:
    streams = boto3.session.Session().client("dynamodbstreams", config=NO_RETRY, **client_kwargs(ddb.meta.endpoint_url))
    arn = ddb.describe_table(TableName="Limits")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    return [r["eventName"] for r in records if r["dynamodb"]["Keys"]["pk"]["S"] == pk]


def test_a_write_that_changes_nothing_emits_no_stream_record(ddb: Any) -> None:
    pk = f"same-{uuid.uuid4().hex}"
    item = {**key(pk), "name": {"S": "a"}}
    ddb.put_item(TableName="Limits", Item=item)
    ddb.put_item(TableName="Limits", Item=item)
    same = {":v": {"S": "a"}}
    ddb.update_item(
        TableName="Limits",
        Key=key(pk),
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues=same,
    )
    ddb.delete_item(TableName="Limits", Key=key(f"never-{pk}"))
    ddb.update_item(
        TableName="Limits",
        Key=key(pk),
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":v": {"S": "b"}},
    )
    assert stream_records(ddb, pk) == ["INSERT", "MODIFY"]


def test_a_transaction_over_four_megabytes_is_refused_and_writes_nothing(ddb: Any) -> None:
    pks = [f"mb-{uuid.uuid4().hex}" for _ in range(11)]
    blob = "y" * 390_000  # 11 items of 390 KB: each within the 400 KB item limit, 4.1 MB together
    items = [{"Put": {"TableName": "Limits", "Item": {**key(pk), "blob": {"S": blob}}}} for pk in pks]
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(TransactItems=items)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "4 MB" in refused.value.response["Error"]["Message"]
    assert all(count_of(ddb, pk) == 0 and "Item" not in ddb.get_item(TableName="Limits", Key=key(pk)) for pk in pks)
    ddb.transact_write_items(TransactItems=items[:10])  # 3.9 MB is fine


def test_a_client_request_token_writes_once_and_refuses_other_parameters(ddb: Any) -> None:
    pk, token = f"tok-{uuid.uuid4().hex}", uuid.uuid4().hex
    first = ddb.transact_write_items(TransactItems=[bump(pk)], ClientRequestToken=token)
    again = ddb.transact_write_items(TransactItems=[bump(pk)], ClientRequestToken=token)
    assert first["ResponseMetadata"]["HTTPStatusCode"] == again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert count_of(ddb, pk) == 1
    with pytest.raises(ddb.exceptions.IdempotentParameterMismatchException):
        ddb.transact_write_items(TransactItems=[bump(f"{pk}-other")], ClientRequestToken=token)
    assert count_of(ddb, f"{pk}-other") == 0
    ddb.transact_write_items(TransactItems=[bump(pk)], ClientRequestToken=uuid.uuid4().hex)
    assert count_of(ddb, pk) == 2


def test_the_contention_spec_parses_and_refuses_what_it_does_not_know() -> None:
    assert contention.parse("") == contention.ContentionPlan(2.0, 200.0)
    assert contention.parse("off").describe() == "off"
    assert contention.parse("hold_ms=5,item_wcu=0") == contention.ContentionPlan(5.0, 0.0)
    for bad in ("hold=5", "item_wcu=-1", "item_wcu=fast", "hold_ms"):
        with pytest.raises(ValueError):
            contention.parse(bad)


# --- EventBridge Scheduler ----------------------------------------------------------------------------
MALFORMED = [
    "at(2026-13-01T00:00:00)",  # no 13th month
    "at(2026-02-30T10:00:00)",
    "at(2026-01-01 10:00:00)",
    "at(2026-01-01T10:00)",
    "at(2026-01-01T10:00:00Z)",
    "at(2026-01-01T10:00:00.000)",
    "at()",
    "at(tomorrow)",
    "2026-01-01T10:00:00",
    "rate(0 minutes)",
    "rate(5 weeks)",
    "cron(0 12 * * ?)",
]


def test_a_malformed_schedule_expression_is_refused_at_create(messaging_endpoint: str) -> None:
    scheduler = boto3.session.Session().client("scheduler", config=NO_RETRY, **client_kwargs(messaging_endpoint))
    group = f"limits-{uuid.uuid4().hex[:12]}"
    scheduler.create_schedule_group(Name=group)
    target = {"Arn": function_arn("f"), "RoleArn": role_arn("r")}
    schedule = {"GroupName": group, "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": target}
    try:
        for i, expression in enumerate(MALFORMED):
            with pytest.raises(ClientError) as refused:
                scheduler.create_schedule(Name=f"bad-{i}", ScheduleExpression=expression, **schedule)
            assert refused.value.response["Error"]["Code"] == "ValidationException", expression
        assert not scheduler.list_schedules(GroupName=group)["Schedules"]
        for i, expression in enumerate(["at(2030-02-28T23:59:59)", "rate(1 hour)", "cron(0 12 * * ? *)"]):
            scheduler.create_schedule(Name=f"good-{i}", ScheduleExpression=expression, **schedule)
        with pytest.raises(ClientError) as refused:
            scheduler.update_schedule(Name="good-0", ScheduleExpression="at(2030-02-30T00:00:00)", **schedule)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    finally:
        for listed in scheduler.list_schedules(GroupName=group)["Schedules"]:
            scheduler.delete_schedule(Name=listed["Name"], GroupName=group)
        scheduler.delete_schedule_group(Name=group)
