"""The pumps' wire client against the session's embedded AWS: the same answers and errors as botocore."""

from __future__ import annotations

import socket
import uuid

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.identity import ACCOUNT_ID, aws_client
from devstack.lambda_events.dynamodb import stream_record
from devstack.lambda_events.sqs import sqs_record
from devstack.pollers.wire import WireClient

_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
_SCALARS = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-(10**12), 10**12)),
    st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=12)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda bs: {"BS": sorted(bs)}, st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=3)),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
        st.builds(lambda m: {"M": m}, st.dictionaries(_NAMES, inner, max_size=3)),
    ),
    max_leaves=8,
)


def _iterator(streams, arn: str) -> str:
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][-1]["ShardId"]
    return streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=st.dictionaries(_NAMES.filter(lambda n: n != "pk"), _VALUES, max_size=4))
def test_a_stream_record_read_on_the_wire_is_the_event_botocore_gives(aws_endpoint, stream_table, item) -> None:
    ddb, table = stream_table
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    sdk = aws_client("dynamodbstreams", aws_endpoint)
    wire = WireClient("dynamodbstreams", aws_endpoint, ("GetRecords",))
    by_sdk, by_wire = _iterator(sdk, arn), _iterator(sdk, arn)
    key = uuid.uuid4().hex
    ddb.put_item(TableName=table, Item={"pk": {"S": key}, **item})
    ddb.delete_item(TableName=table, Key={"pk": {"S": key}})
    expected = [stream_record(r, arn) for r in sdk.get_records(ShardIterator=by_sdk)["Records"]]
    got = [stream_record(r, arn, from_wire=True) for r in wire.get_records(ShardIterator=by_wire)["Records"]]
    assert [r["eventName"] for r in got] == ["INSERT", "REMOVE"]
    for ours, theirs in zip(got, expected, strict=True):
        # Each read of a record gets its own eventID from the embedded AWS; the rest is the record.
        assert {**ours, "eventID": ""} == {**theirs, "eventID": ""}


def test_messages_received_on_the_wire_make_the_records_botocore_gives(messaging_endpoint) -> None:
    sqs = aws_client("sqs", messaging_endpoint)
    url = sqs.create_queue(QueueName=f"wire-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    try:
        sqs.send_message(
            QueueUrl=url,
            MessageBody='{"é": "\\u2603"}',
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": "order_placed"},
                "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
            },
        )
        wire = WireClient("sqs", messaging_endpoint, ("ReceiveMessage", "DeleteMessageBatch"))
        asked = {"QueueUrl": url, "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"]}
        theirs = sqs.receive_message(**asked)["Messages"][0]
        ours = wire.receive_message(**asked)["Messages"][0]
        assert ours["MessageId"] == theirs["MessageId"]
        volatile = {"receiptHandle": "", "attributes": {}}
        expected = {**sqs_record(theirs, "arn:q"), **volatile}
        assert {**sqs_record(ours, "arn:q"), **volatile} == expected
        deleted = wire.delete_message_batch(QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": ours["ReceiptHandle"]}])
        assert [entry["Id"] for entry in deleted["Successful"]] == ["0"]
        assert "Messages" not in sqs.receive_message(QueueUrl=url)
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_an_error_answer_raises_the_error_botocore_raises(messaging_endpoint) -> None:
    sqs = aws_client("sqs", messaging_endpoint)
    url = f"{messaging_endpoint}/{ACCOUNT_ID}/wire-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as theirs:
        sqs.receive_message(QueueUrl=url)
    wire = WireClient("sqs", messaging_endpoint, ("ReceiveMessage",))
    with pytest.raises(ClientError) as ours:
        wire.receive_message(QueueUrl=url)
    assert type(ours.value).__name__ == type(theirs.value).__name__ == "QueueDoesNotExist"
    assert ours.value.response["Error"]["Code"] == theirs.value.response["Error"]["Code"]
    assert ours.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_connection_the_server_dropped_is_replaced_once(messaging_endpoint) -> None:
    sqs = aws_client("sqs", messaging_endpoint)
    url = sqs.create_queue(QueueName=f"wire-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    try:
        wire = WireClient("sqs", messaging_endpoint, ("ReceiveMessage",))
        assert "Messages" not in wire.receive_message(QueueUrl=url)
        kept = wire._local.connection
        kept.sock.shutdown(socket.SHUT_RDWR)  # as a server closing an idle keep-alive connection
        assert "Messages" not in wire.receive_message(QueueUrl=url)
        assert wire._local.connection is not kept
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_calls_not_on_the_wire_go_through_botocore(messaging_endpoint) -> None:
    wire = WireClient("sqs", messaging_endpoint, ("ReceiveMessage",))
    assert wire.list_queues(QueueNamePrefix="wire-none-")["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ValueError):
        WireClient("sns", messaging_endpoint, ("Publish",))
