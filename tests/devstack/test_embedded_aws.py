"""The embedded AWS (moto in a child process): correct, bounded and fast enough for the dev stack."""

from __future__ import annotations

import http.client
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.backend import order_items
from devstack import contention
from devstack.identity import ACCESS_KEY_ID, ACCOUNT_ID, REGION, client_kwargs
from devstack.moto_backend import EmbeddedAws

# One attempt per call: botocore's retries would otherwise hide 500s.
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=16)


def _client(service: str, endpoint: str | None) -> Any:
    return boto3.session.Session().client(service, config=NO_RETRY, **client_kwargs(endpoint))


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    # moto's own behaviour and cost, without the contention modelled on top (test_aws_limits.py shows that).
    with mock.patch.dict(os.environ, {contention.ENV_VAR: "off"}), EmbeddedAws() as embedded:
        yield embedded


@pytest.fixture(scope="module")
def ddb(aws: EmbeddedAws) -> Any:
    return _client("dynamodb", aws.endpoint)


def _table(ddb: Any, stream: bool = False) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    extra: dict[str, Any] = {}
    if stream:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    return name


def _load(endpoint: str, table: str, count: int) -> None:
    client = _client("dynamodb", endpoint)

    def chunk(start: int) -> None:
        pending: dict[str, Any] = {
            table: [
                {"PutRequest": {"Item": {"pk": {"S": f"item#{i}"}, "payload": {"S": "x" * 64}}}}
                for i in range(start, min(start + 25, count))
            ]
        }
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(chunk, range(0, count, 25)))


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_concurrent_conditional_decrements_sell_exactly_the_stock(aws: EmbeddedAws, ddb: Any) -> None:
    table = _table(ddb)
    ddb.put_item(TableName=table, Item={"pk": {"S": "stock"}, "stock": {"N": "100"}})
    attempts = iter(range(500))
    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    statuses: Counter[int] = Counter()

    def writer() -> None:
        client = _client("dynamodb", aws.endpoint)
        while True:
            with lock:
                attempt = next(attempts, None)
            if attempt is None:
                return
            try:
                client.transact_write_items(TransactItems=order_items(table, str(attempt)))
                outcome, status = "ok", 200
            except ClientError as e:
                outcome, status = e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
            with lock:
                outcomes[outcome] += 1
                statuses[status] += 1

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert outcomes == {"ok": 100, "TransactionCanceledException": 400}
    assert statuses[500] == 0
    stock = ddb.get_item(TableName=table, Key={"pk": {"S": "stock"}}, ConsistentRead=True)["Item"]["stock"]["N"]
    assert stock == "0"
    orders = ddb.scan(
        TableName=table, FilterExpression="begins_with(pk, :o)", ExpressionAttributeValues={":o": {"S": "order#"}}
    )
    assert orders["Count"] == 100


@pytest.mark.slow
def test_transaction_cost_does_not_grow_with_table_size(aws: EmbeddedAws, ddb: Any) -> None:
    empty, big = _table(ddb), _table(ddb)
    _load(aws.endpoint, big, 20_000)
    assert ddb.describe_table(TableName=big)["Table"]["ItemCount"] == 20_000
    for table in (empty, big):
        ddb.put_item(TableName=table, Item={"pk": {"S": "stock"}, "stock": {"N": "1000000"}})
    elapsed = {empty: 0.0, big: 0.0}
    # Interleaved rounds so drift on a busy machine hits both tables alike.
    for _ in range(4):
        for table in (empty, big):
            started = time.perf_counter()
            for _ in range(50):
                ddb.transact_write_items(TransactItems=order_items(table, uuid.uuid4().hex))
            elapsed[table] += time.perf_counter() - started

    ratio = elapsed[big] / elapsed[empty]
    print(f"200 tx: empty {elapsed[empty]:.2f}s, 20k items {elapsed[big]:.2f}s, ratio {ratio:.2f}")
    assert ratio < 2.0


def _stream_records(aws: EmbeddedAws, ddb: Any, table: str) -> list[dict[str, Any]]:
    streams = _client("dynamodbstreams", aws.endpoint)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]


def test_cancelled_transaction_leaves_items_and_stream_untouched(aws: EmbeddedAws, ddb: Any) -> None:
    table = _table(ddb, stream=True)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "b"}, "n": {"N": "2"}})
    before_items = sorted(ddb.scan(TableName=table)["Items"], key=lambda i: i["pk"]["S"])
    assert len(_stream_records(aws, ddb, table)) == 2

    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "a"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": "c"}, "n": {"N": "3"}}}},
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "b"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "d"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert sorted(ddb.scan(TableName=table)["Items"], key=lambda i: i["pk"]["S"]) == before_items
    assert len(_stream_records(aws, ddb, table)) == 2

    # The stream keeps working after a rollback: a committed transaction appends its records.
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "c"}}}}])
    records = _stream_records(aws, ddb, table)
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "INSERT"]
    assert len({r["dynamodb"]["SequenceNumber"] for r in records}) == 3


def _cancellation_scenarios(table: str) -> list[list[dict[str, Any]]]:
    update_a = {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "SET n = n + :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    return [
        # Condition failure with the old item returned, after writes that must be undone.
        [
            update_a,
            {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}}}},
            {
                "Delete": {
                    "TableName": table,
                    "Key": {"pk": {"S": "b"}},
                    "ConditionExpression": "n = :nine",
                    "ExpressionAttributeValues": {":nine": {"N": "9"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
        # A failing update expression (number + string) is a reason of its own, not a 500.
        [
            {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}}}},
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": "b"}},
                    "UpdateExpression": "SET n = s + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ],
        # An unknown table.
        [update_a, {"Put": {"TableName": "no-such-table", "Item": {"pk": {"S": "x"}}}}],
        # Two operations on one item: a ValidationException, not a cancellation.
        [update_a, {"Delete": {"TableName": table, "Key": {"pk": {"S": "a"}}}}],
        # Condition check on a missing item with ALL_OLD: no item to return.
        [
            update_a,
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": {"pk": {"S": "missing"}},
                    "ConditionExpression": "attribute_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
        # A commit.
        [update_a, {"Delete": {"TableName": table, "Key": {"pk": {"S": "b"}}}}],
    ]


def _run_scenarios(client: Any) -> list[Any]:
    table = _table(client)
    client.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    client.put_item(TableName=table, Item={"pk": {"S": "b"}, "n": {"N": "2"}, "s": {"S": "text"}})
    observed: list[Any] = []
    for scenario in _cancellation_scenarios(table):
        try:
            client.transact_write_items(TransactItems=scenario)
            outcome: Any = "committed"
        except ClientError as e:
            outcome = (
                e.response["Error"]["Code"],
                e.response["Error"]["Message"],
                e.response.get("CancellationReasons"),
            )
        items = sorted(client.scan(TableName=table)["Items"], key=lambda i: i["pk"]["S"])
        observed.append((outcome, items))
    return observed


def test_cancellation_reasons_and_state_match_unpatched_moto(aws: EmbeddedAws, ddb: Any) -> None:
    from moto import mock_aws

    with mock_aws():
        reference = _run_scenarios(_client("dynamodb", None))
    patched = _run_scenarios(ddb)
    assert patched == reference
    assert reference[0][0][2][2]["Item"] == {"pk": {"S": "b"}, "n": {"N": "2"}, "s": {"S": "text"}}
    assert reference[-1][0] == "committed"


def test_long_poll_does_not_block_other_requests(aws: EmbeddedAws, ddb: Any) -> None:
    sqs = _client("sqs", aws.messaging_endpoint)
    queue_url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    table = _table(ddb)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    received: dict[str, Any] = {}

    def long_poll(wait: int) -> None:
        started = time.perf_counter()
        received["messages"] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=wait).get("Messages", [])
        received["waited"] = time.perf_counter() - started

    poller = threading.Thread(target=long_poll, args=(6,))
    poller.start()
    time.sleep(0.3)
    # Other calls, to the same process as the poll and to DynamoDB's, are answered while it still waits:
    # judged by the poll still running when they return, not by a speed.
    ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})
    _client("sqs", aws.messaging_endpoint).list_queues()
    assert poller.is_alive()
    poller.join(30)
    assert received["messages"] == []
    assert received["waited"] >= 5.5

    # A message sent during a long poll wakes it up before the poll's own time runs out.
    poller = threading.Thread(target=long_poll, args=(20,))
    poller.start()
    time.sleep(0.5)
    _client("sqs", aws.messaging_endpoint).send_message(QueueUrl=queue_url, MessageBody="hello")
    poller.join(40)
    assert [m["Body"] for m in received["messages"]] == ["hello"]
    assert received["waited"] < 19


def test_keep_alive_connection_serves_many_requests(aws: EmbeddedAws) -> None:
    url = urlparse(aws.endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20250101/{REGION}/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=x",
    }
    conn.request("POST", "/", body=b"{}", headers={**headers, "X-Amz-Target": "DynamoDB_20120810.ListTables"})
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    # An error response, then a success, on the same socket.
    conn.request(
        "POST",
        "/",
        body=b'{"TableName": "nope"}',
        headers={**headers, "X-Amz-Target": "DynamoDB_20120810.DescribeTable"},
    )
    error = conn.getresponse()
    assert error.status == 400 and b"ResourceNotFoundException" in error.read()
    conn.request("POST", "/", body=b"{}", headers={**headers, "X-Amz-Target": "DynamoDB_20120810.ListTables"})
    last = conn.getresponse()
    assert last.status == 200 and b"TableNames" in last.read()
    assert conn.sock is sock and first.getheader("Connection") != "close"
    conn.close()

    # HEAD responses (no body) and bodies of other services through boto3's pooled connections.
    s3 = _client("s3", aws.messaging_endpoint)
    s3.create_bucket(Bucket="keepalive")
    s3.put_object(Bucket="keepalive", Key="k", Body=b"x" * 100_000)
    assert s3.head_object(Bucket="keepalive", Key="k")["ContentLength"] == 100_000
    assert s3.get_object(Bucket="keepalive", Key="k")["Body"].read() == b"x" * 100_000
    with pytest.raises(ClientError):
        s3.head_object(Bucket="keepalive", Key="missing")
    assert s3.list_objects_v2(Bucket="keepalive")["KeyCount"] == 1


@pytest.mark.slow
def test_memory_stays_bounded_over_many_transactions(aws: EmbeddedAws, ddb: Any) -> None:
    assert aws.pid is not None
    table = _table(ddb)
    ddb.put_item(TableName=table, Item={"pk": {"S": "stock"}, "stock": {"N": "1000000000"}})
    clients = [_client("dynamodb", aws.endpoint) for _ in range(8)]

    def transact(i: int) -> None:
        # Order rows cycle over 100 keys: the data stays the same size, so any growth is a leak.
        items = order_items(table, str(i % 100))
        del items[1]["Put"]["ConditionExpression"]
        clients[i % 8].transact_write_items(TransactItems=items)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(transact, range(1000)))
        warm = _rss_mb(aws.pid)
        list(pool.map(transact, range(3000)))
    after = _rss_mb(aws.pid)
    print(f"child RSS: {warm:.0f} MB after 1,000 tx, {after:.0f} MB after 4,000 tx")
    # Without the periodic reset of moto's model tracker this grows ~2.5 MB per 1,000 transactions (7.5
    # here); with it, about 0.4 (measured 2026-12-07: 1.2 MB after these 3,000).
    assert after - warm < 5
    assert after < 400


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_dynamodb_and_messaging_run_in_processes_of_their_own(aws: EmbeddedAws, ddb: Any) -> None:
    pids = aws.pids
    assert all(pids.values()) and len(set(pids.values())) == 2
    assert aws.endpoint != aws.messaging_endpoint
    assert aws.endpoint_for("dynamodbstreams") == aws.endpoint_for("dynamodb") == aws.endpoint
    assert aws.endpoint_for("sqs") == aws.endpoint_for("cognito-idp") == aws.messaging_endpoint
    table = _table(ddb)
    assert table in ddb.list_tables()["TableNames"]
    # Each process refuses the other's services rather than serving an empty copy of them.
    with pytest.raises(ClientError):
        _client("dynamodb", aws.messaging_endpoint).list_tables()
    with pytest.raises(ClientError):
        _client("sqs", aws.endpoint).list_queues()


def test_sns_delivers_to_sqs_subscriptions_across_the_split(aws: EmbeddedAws) -> None:
    sns, sqs = _client("sns", aws.endpoint_for("sns")), _client("sqs", aws.endpoint_for("sqs"))
    topic = sns.create_topic(Name=f"topic-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"sub-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    published = sns.publish_batch(
        TopicArn=topic, PublishBatchRequestEntries=[{"Id": str(i), "Message": f"m{i}"} for i in range(3)]
    )
    assert not published.get("Failed")
    bodies: list[str] = []
    deadline = time.monotonic() + 30
    while len(bodies) < 3 and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [m["Body"] for m in got.get("Messages", [])]
    assert sorted(bodies) == ["m0", "m1", "m2"]


def test_stopping_the_embedded_aws_stops_every_process() -> None:
    embedded = EmbeddedAws()
    embedded.start()
    pids = [pid for pid in embedded.pids.values() if pid is not None]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    embedded.stop()
    assert not any(_alive(pid) for pid in pids)
    assert embedded.pids == {"dynamodb": None, "messaging": None}


def test_the_cheap_retention_check_answers_as_moto_does() -> None:
    from moto import mock_aws
    from moto.sqs.models import SQSBackend, sqs_backends

    from devstack.moto_messaging import _patch_sqs_retention_check

    original = SQSBackend.is_message_valid_based_on_retention_period
    with mock_aws():
        sqs = _client("sqs", None)
        url = sqs.create_queue(QueueName="retained", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        for body in ("old", "new"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        backend = sqs_backends[ACCOUNT_ID][REGION]
        old, new = backend.queues["retained"]._messages
        old.sent_timestamp -= 61_000  # sent 61 s before its 60 s retention ran out
        expected = [original(backend, "retained", m) for m in (old, new)]
        try:
            _patch_sqs_retention_check()
            assert [backend.is_message_valid_based_on_retention_period("retained", m) for m in (old, new)] == expected
        finally:
            SQSBackend.is_message_valid_based_on_retention_period = original  # type: ignore[method-assign]
    assert expected == [False, True]


def test_sending_to_standard_and_fifo_queues_behaves_as_moto_does(aws: EmbeddedAws) -> None:
    sqs = _client("sqs", aws.messaging_endpoint)
    standard = sqs.create_queue(QueueName=f"std-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    fifo = sqs.create_queue(
        QueueName=f"fifo-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for body in ("a", "b", "a"):
        sqs.send_message(QueueUrl=standard, MessageBody=body)
        sqs.send_message(QueueUrl=fifo, MessageBody=body, MessageGroupId="g")
    counts = sqs.get_queue_attributes(QueueUrl=standard, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "3" and "ContentBasedDeduplication" not in counts
    # Content-based deduplication still drops the FIFO queue's repeated "a".
    got = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["a", "b"]
    assert sorted(m["Body"] for m in sqs.receive_message(QueueUrl=standard, MaxNumberOfMessages=10)["Messages"]) == [
        "a",
        "a",
        "b",
    ]
