"""Domain events from the Drops and Orders streams: which events a record stands for, deterministic ids,
publication to the events topic, and partial batch failures."""

from __future__ import annotations

import json
import uuid

import pytest
from boto3.dynamodb.types import TypeSerializer

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.delivery import events
from devstack import identity
from devstack.lambda_runtime import LambdaContext

_serialize = TypeSerializer().serialize
DROP = {
    "drop_id": "dr_1",
    "product_id": "pr_1",
    "creator_id": "cr_1",
    "start_time": 1_900_000_000_000,
    "end_time": 1_900_000_360_000,
    "initial_stock": 100,
    "stock": 100,
    "status": "scheduled",
    "low_stock_at": 10,
    "price_cents": 1999,
    "currency": "USD",
}
ORDER = {
    "order_id": "or_1",
    "user_id": "u_1",
    "drop_id": "dr_1",
    "quantity": 2,
    "amount_cents": 3998,
    "currency": "USD",
    "status": "pending_payment",
}


def record(name: str, key: str, new: dict | None, old: dict | None = None, event_id: str | None = None) -> dict:
    """A Lambda DynamoDB Streams record shaped like tests/events/dynamodb-stream.json."""
    image = new or old or {}
    change: dict = {
        "ApproximateCreationDateTime": 1693997155.0,
        "Keys": {key: _serialize(image[key])},
        "StreamViewType": "NEW_AND_OLD_IMAGES",
        "SequenceNumber": str(uuid.uuid4().int)[:21],
        "SizeBytes": 26,
    }
    if new is not None:
        change["NewImage"] = {k: _serialize(v) for k, v in new.items()}
    if old is not None:
        change["OldImage"] = {k: _serialize(v) for k, v in old.items()}
    return {
        "eventID": event_id or uuid.uuid4().hex,
        "eventVersion": "1.1",
        "dynamodb": change,
        "awsRegion": identity.REGION,
        "eventName": name,
        "eventSourceARN": identity.arn("dynamodb", "table/livedrop-test-Drops/stream/2030"),
        "eventSource": "aws:dynamodb",
    }


def kinds(rec: dict) -> list[str]:
    return [e["event_type"] for e in events.envelopes_for(rec)]


def test_a_cancelled_drop_is_told_once() -> None:
    cancelled = DROP | {"status": "cancelled"}
    assert kinds(record("MODIFY", "drop_id", cancelled, DROP)) == ["drop_cancelled"]
    assert kinds(record("MODIFY", "drop_id", cancelled, cancelled)) == []


def test_drop_records() -> None:
    scheduled = events.envelopes_for(record("INSERT", "drop_id", DROP))
    assert [e["event_type"] for e in scheduled] == ["drop_scheduled"]
    assert scheduled[0]["data"]["stock"] == 100 and scheduled[0]["occurred_at"] == "2023-09-06T10:45:55.000Z"
    live = DROP | {"status": "live"}
    assert kinds(record("MODIFY", "drop_id", live, DROP)) == ["drop_started"]
    assert kinds(record("MODIFY", "drop_id", live | {"stock": 50}, live)) == ["stock_changed"]
    low = events.envelopes_for(record("MODIFY", "drop_id", live | {"stock": 10}, live | {"stock": 11}))
    assert [e["event_type"] for e in low] == ["stock_changed", "stock_low"]
    assert low[1]["data"] == {
        "drop_id": "dr_1",
        "creator_id": "cr_1",
        "product_id": "pr_1",
        "stock": 10,
        "low_stock_threshold": 10,
    }
    # Already below the threshold: no second stock_low.
    assert kinds(record("MODIFY", "drop_id", live | {"stock": 9}, live | {"stock": 10})) == ["stock_changed"]
    assert kinds(record("MODIFY", "drop_id", live | {"stock": 0}, live | {"stock": 3})) == ["stock_changed", "sold_out"]
    assert kinds(record("MODIFY", "drop_id", live | {"stock": 0}, live | {"stock": 30})) == [
        "stock_changed",
        "stock_low",
        "sold_out",
    ]
    assert kinds(record("MODIFY", "drop_id", live | {"status": "ended"}, live)) == ["drop_ended"]
    assert kinds(record("MODIFY", "drop_id", live | {"stock": 1}, live | {"stock": 0})) == ["stock_changed"]
    assert kinds(record("REMOVE", "drop_id", None, live)) == []
    assert kinds(record("MODIFY", "drop_id", live, live)) == []


def test_order_records() -> None:
    placed = events.envelopes_for(record("INSERT", "order_id", ORDER))
    assert [e["event_type"] for e in placed] == ["order_placed"]
    assert placed[0]["data"] == {
        "order_id": "or_1",
        "user_id": "u_1",
        "drop_id": "dr_1",
        "quantity": 2,
        "amount_cents": 3998,
        "currency": "USD",
    }
    for status, kind in (
        ("confirmed", "order_confirmed"),
        ("payment_failed", "order_failed"),
        ("expired", "order_expired"),
    ):
        derived = events.envelopes_for(record("MODIFY", "order_id", ORDER | {"status": status}, ORDER))
        assert [(e["event_type"], e["data"]) for e in derived] == [
            (kind, {"order_id": "or_1", "user_id": "u_1", "drop_id": "dr_1"})
        ]
    assert kinds(record("MODIFY", "order_id", ORDER | {"updated_at": 5}, ORDER)) == []


def test_event_ids_are_deterministic_per_record_and_type() -> None:
    live = DROP | {"status": "live", "stock": 0}
    rec = record("MODIFY", "drop_id", live, DROP | {"status": "scheduled", "stock": 5})
    first, again = events.envelopes_for(rec), events.envelopes_for(json.loads(json.dumps(rec)))
    assert first == again
    ids = [e["event_id"] for e in first]
    assert [e["event_type"] for e in first] == ["drop_started", "stock_changed", "sold_out"]
    assert len(set(ids)) == len(ids)
    other = events.envelopes_for(record("MODIFY", "drop_id", live, DROP | {"stock": 5}, event_id="another"))
    assert not {e["event_id"] for e in other} & set(ids)


@pytest.fixture()
def topic_queue():
    """A queue of our own subscribed to the events topic (raw delivery, no filter), deleted afterwards."""
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName=f"test-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(
        TopicArn=get_settings().events_topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    yield url
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=url)


def drain(url: str, wanted: int) -> list[dict]:
    sqs = aws.client("sqs")
    found: list[dict] = []
    for _ in range(20):
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        found += batch.get("Messages", [])
        if len(found) >= wanted:
            break
    return found


def test_the_handler_publishes_envelopes_with_their_type(app_module, topic_queue) -> None:
    drop_id = f"dr_{uuid.uuid4().hex}"
    drop = DROP | {"drop_id": drop_id, "status": "live"}
    stream_event = {
        "Records": [
            record("MODIFY", "drop_id", drop | {"stock": 0}, drop | {"stock": 20}),
            record("INSERT", "order_id", ORDER | {"order_id": f"or_{uuid.uuid4().hex}", "drop_id": drop_id}),
        ]
    }
    assert app_module.domain_events(stream_event, LambdaContext("domain_events")) == {"batchItemFailures": []}
    expected = [e for r in stream_event["Records"] for e in events.envelopes_for(r)]
    messages = drain(topic_queue, len(expected))
    bodies = sorted((json.loads(m["Body"]) for m in messages), key=lambda e: e["event_id"])
    assert bodies == sorted(expected, key=lambda e: e["event_id"])
    assert {m["MessageAttributes"]["event_type"]["StringValue"] for m in messages} == {
        "stock_changed",
        "stock_low",
        "sold_out",
        "order_placed",
    }
    for message in messages:
        assert message["MessageAttributes"]["event_type"]["StringValue"] == json.loads(message["Body"])["event_type"]


def test_a_record_that_cannot_be_published_is_reported_alone(app_module, monkeypatch) -> None:
    good, bad = record("INSERT", "drop_id", DROP), record("INSERT", "order_id", ORDER)
    published: list[dict] = []

    def publish(envelopes: list[dict]) -> None:
        # Events are published several records to a call: any call carrying the order's event fails.
        if any(e["event_type"] == "order_placed" for e in envelopes):
            raise RuntimeError("SNS is down")
        published.extend(envelopes)

    monkeypatch.setattr(events, "publish", publish)
    result = app_module.domain_events({"Records": [good, bad]}, LambdaContext("domain_events"))
    assert result == {"batchItemFailures": [{"itemIdentifier": bad["dynamodb"]["SequenceNumber"]}]}
    assert [e["event_type"] for e in published] == ["drop_scheduled"]


def test_a_batch_publishes_only_the_newest_stock_change_per_drop(app_module, monkeypatch) -> None:
    published: list[dict] = []
    monkeypatch.setattr(events, "publish", published.extend)
    drop_a, drop_b = DROP | {"drop_id": "dr_a", "status": "live"}, DROP | {"drop_id": "dr_b", "status": "live"}
    batch = [
        record("MODIFY", "drop_id", drop_a | {"stock": 19}, drop_a | {"stock": 20}),
        record("MODIFY", "drop_id", drop_b | {"stock": 9}, drop_b | {"stock": 10}),
        record("MODIFY", "drop_id", drop_a | {"stock": 18}, drop_a | {"stock": 19}),
        record("MODIFY", "drop_id", drop_a | {"stock": 17}, drop_a | {"stock": 18}),
    ]
    result = app_module.domain_events({"Records": batch}, LambdaContext("domain_events"))
    assert result == {"batchItemFailures": []}
    changes = [(e["data"]["drop_id"], e["data"]["stock"]) for e in published if e["event_type"] == "stock_changed"]
    assert changes == [("dr_b", 9), ("dr_a", 17)]
