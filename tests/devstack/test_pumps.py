"""The event-source pumps against the session's embedded AWS: event shapes, retries, redrive, schedules."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError

from devstack.identity import REGION, aws_client, function_arn, role_arn
from devstack.lambda_runtime import LambdaContext
from devstack.pollers import PumpSet, QueuePump, SchedulePump, StreamPump, start_all, stop_all

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def _unique(prefix: str) -> str:
    return f"pumps-{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Recorder:
    """A Lambda-style handler that records its calls and answers with `respond(event, calls_so_far)`."""

    def __init__(self, respond=None) -> None:
        self.calls: list[tuple[float, dict, object]] = []
        self.lock = threading.Lock()
        self.respond = respond

    def __call__(self, event: dict, context: object):
        with self.lock:
            self.calls.append((time.time(), event, context))
            count = len(self.calls)
        return self.respond(event, count) if self.respond else None

    @property
    def records(self) -> list[dict]:
        with self.lock:
            return [r for _, event, _ in self.calls for r in event["Records"]]


def _queue(aws_endpoint: str, visibility: int = 1, max_receive: int | None = None):
    sqs = aws_client("sqs", aws_endpoint)
    attributes = {"VisibilityTimeout": str(visibility)}
    dlq_url = None
    if max_receive is not None:
        dlq_url = sqs.create_queue(QueueName=_unique("dlq"))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
    url = sqs.create_queue(QueueName=_unique("queue"), Attributes=attributes)["QueueUrl"]
    return sqs, url, dlq_url


def _depth(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


# ---------------------------------------------------------------------------------------------- streams


def test_stream_records_reach_the_handler_shaped_like_aws(aws_endpoint, stream_table):
    ddb, table = stream_table
    handler = Recorder()
    pump = StreamPump(aws_endpoint, table, handler, function_name="domain_events")
    pump.start()
    try:
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "1"}, "blob": {"B": b"\x00\x01"}})
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "2"}})
        assert wait_until(lambda: len(handler.records) >= 2)
    finally:
        pump.stop()

    sample = _sample("dynamodb-stream.json")["Records"]
    insert, modify = handler.records[:2]
    stream_arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    for record, expected in ((insert, sample[0]), (modify, sample[1])):
        assert set(record) == set(expected)
        # The sample's MODIFY record lacks ApproximateCreationDateTime; AWS sends it on every record.
        assert set(record["dynamodb"]) == set(expected["dynamodb"]) | {"ApproximateCreationDateTime"}
        assert record["eventName"] == expected["eventName"]
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"] == stream_arn
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
        assert isinstance(record["dynamodb"]["SequenceNumber"], str)
        assert record["dynamodb"]["Keys"] == {"pk": {"S": "a"}}
    assert insert["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "n": {"N": "1"}, "blob": {"B": "AAE="}}
    assert modify["dynamodb"]["OldImage"] == insert["dynamodb"]["NewImage"]
    assert modify["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "n": {"N": "2"}}
    assert int(modify["dynamodb"]["SequenceNumber"]) > int(insert["dynamodb"]["SequenceNumber"])
    json.dumps(handler.calls[0][1])  # the event is plain JSON, as Lambda delivers it

    context = handler.calls[0][2]
    assert isinstance(context, LambdaContext)
    assert context.function_name == "domain_events"
    assert context.invoked_function_arn.endswith(":function:domain_events")
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert context.aws_request_id != handler.calls[-1][2].aws_request_id or len(handler.calls) == 1


def test_stream_partial_failure_retries_from_the_failed_record_and_errors_retry_then_drop(aws_endpoint, stream_table):
    ddb, table = stream_table
    for i in range(3):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})

    def respond(event, call):
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        if call == 1:  # k1 fails once: k0 is done, k1 and k2 come again
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["dynamodb"]["SequenceNumber"]}]}
        if "poison" in keys:
            raise RuntimeError("poison")
        return {"batchItemFailures": []}

    handler = Recorder(respond)
    pump = StreamPump(aws_endpoint, table, handler, from_start=True, max_retries=2, retry_backoff=0.02)
    pump.start()
    try:
        assert wait_until(lambda: len(handler.calls) >= 2)
        batches = [[r["dynamodb"]["Keys"]["pk"]["S"] for r in e["Records"]] for _, e, _ in handler.calls]
        assert batches[:2] == [["k0", "k1", "k2"], ["k1", "k2"]]

        ddb.put_item(TableName=table, Item={"pk": {"S": "poison"}})
        assert wait_until(lambda: len(handler.calls) >= 5)
        time.sleep(0.3)  # retries are spent: the record is dropped, not tried again
        # The pump goes on with what comes next.
        ddb.put_item(TableName=table, Item={"pk": {"S": "after"}})
        assert wait_until(lambda: any(r["dynamodb"]["Keys"]["pk"]["S"] == "after" for r in handler.records))
        assert pump.running
    finally:
        pump.stop()
    keys = Counter(r["dynamodb"]["Keys"]["pk"]["S"] for r in handler.records)
    assert keys["poison"] == 3  # the first try plus max_retries, then dropped
    assert keys["k0"] == 1 and keys["k1"] == 2 and keys["k2"] == 2 and keys["after"] == 1


# ---------------------------------------------------------------------------------------------- queues


def test_sqs_events_are_shaped_like_aws(messaging_endpoint):
    sqs, url, _ = _queue(messaging_endpoint)
    sqs.send_message(
        QueueUrl=url,
        MessageBody='{"hello": "world"}',
        MessageAttributes={
            "event_type": {"DataType": "String", "StringValue": "order_placed"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
        },
    )
    handler = Recorder()
    with QueuePump(messaging_endpoint, url, handler, function_name="payments"):
        assert wait_until(lambda: len(handler.records) == 1)
        assert wait_until(lambda: _depth(sqs, url) == 0)

    expected = _sample("sqs.json")["Records"][0]
    record = handler.records[0]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert set(expected) <= set(record) <= set(expected) | {"md5OfMessageAttributes"}
    assert set(record["attributes"]) >= set(expected["attributes"])
    assert all(isinstance(v, str) for v in record["attributes"].values())
    assert record["body"] == '{"hello": "world"}'
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == queue_arn
    assert record["awsRegion"] == REGION
    assert record["messageAttributes"] == {
        "event_type": {
            "stringValue": "order_placed",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "raw": {"binaryValue": "AQI=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    json.dumps(handler.calls[0][1])
    assert handler.calls[0][2].function_name == "payments"


def test_a_stopped_queue_pump_started_again_delivers_again(messaging_endpoint):
    # A test pauses a consumer and resumes it (tests/api/test_payments.py): the resumed pump must not be
    # left without its invokers, or every later batch of that queue is lost for the session.
    sqs, url, _ = _queue(messaging_endpoint)
    handler = Recorder()
    pump = QueuePump(messaging_endpoint, url, handler)
    for round_ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f'{{"round": {round_}}}')
        pump.start()
        try:
            assert wait_until(lambda: len(handler.records) == round_ + 1)
        finally:
            pump.stop()
    assert [record["body"] for record in handler.records] == ['{"round": 0}', '{"round": 1}']


def test_a_message_that_always_fails_lands_in_the_dlq_and_nothing_else_is_lost(messaging_endpoint):
    sqs, url, dlq_url = _queue(messaging_endpoint, visibility=1, max_receive=2)
    bodies = ["good-1", "bad", "good-2", "good-3"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)

    def respond(event, call):
        if event["Records"][0]["body"] == "bad":
            raise ValueError("always fails")

    handler = Recorder(respond)
    with QueuePump(messaging_endpoint, url, handler, batch_size=1):
        assert wait_until(lambda: _depth(sqs, dlq_url) == 1, timeout=8)
        assert wait_until(lambda: _depth(sqs, url) == 0)

    seen = Counter(r["body"] for r in handler.records)
    assert seen == {"good-1": 1, "good-2": 1, "good-3": 1, "bad": 2}  # maxReceiveCount tries, no more
    receive_counts = [r["attributes"]["ApproximateReceiveCount"] for r in handler.records if r["body"] == "bad"]
    assert receive_counts == ["1", "2"]
    # The second try came after the visibility timeout, not at once.
    bad_times = [t for t, e, _ in handler.calls if e["Records"][0]["body"] == "bad"]
    assert bad_times[1] - bad_times[0] >= 0.9
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["bad"]


def test_partial_batch_failure_retries_only_the_failed_message(messaging_endpoint):
    sqs, url, _ = _queue(messaging_endpoint, visibility=1, max_receive=5)
    bodies = ["m1", "m2", "bad", "m3", "m4"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])

    def respond(event, call):
        failed = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if r["body"] == "bad" and r["attributes"]["ApproximateReceiveCount"] == "1"
        ]
        return {"batchItemFailures": failed}

    handler = Recorder(respond)
    with QueuePump(messaging_endpoint, url, handler, batch_size=10):
        assert wait_until(lambda: Counter(r["body"] for r in handler.records)["bad"] == 2, timeout=6)
        assert wait_until(lambda: _depth(sqs, url) == 0)
        time.sleep(1.2)  # past another visibility timeout: nothing may come back

    seen = Counter(r["body"] for r in handler.records)
    assert seen == {"m1": 1, "m2": 1, "m3": 1, "m4": 1, "bad": 2}
    assert [r["body"] for r in handler.calls[-1][1]["Records"]] == ["bad"]


# ---------------------------------------------------------------------------------------------- schedules


@pytest.fixture
def schedule_group(messaging_endpoint):
    scheduler = aws_client("scheduler", messaging_endpoint)
    group = _unique("group")
    scheduler.create_schedule_group(Name=group)
    yield scheduler, group
    scheduler.delete_schedule_group(Name=group)


def _create_at(scheduler, group, name, when: datetime, payload, tz="UTC", **extra):
    scheduler.create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression=f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone=tz,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": function_arn(extra.pop("function", "drop_lifecycle")),
            "RoleArn": role_arn("scheduler"),
            "Input": json.dumps(payload),
        },
        **extra,
    )


def test_at_schedules_fire_on_time_once_and_disabled_ones_never(messaging_endpoint, schedule_group):
    scheduler, group = schedule_group
    handler = Recorder()
    targets = []

    def resolve(arn):
        targets.append(arn)
        return handler

    at = math.ceil(time.time()) + 2
    at_utc = datetime.fromtimestamp(at, UTC)
    at_paris = datetime.fromtimestamp(at, ZoneInfo("Europe/Paris"))
    _create_at(scheduler, group, "start", at_utc, {"drop_id": "d1", "action": "start"}, ActionAfterCompletion="DELETE")
    _create_at(scheduler, group, "paris", at_paris, {"drop_id": "d2"}, tz="Europe/Paris", ActionAfterCompletion="NONE")
    _create_at(scheduler, group, "off", at_utc, {"drop_id": "d3"}, State="DISABLED")

    pump = SchedulePump(messaging_endpoint, group, resolve)
    with PumpSet([pump]):
        assert wait_until(lambda: len(handler.calls) >= 2, timeout=5)
        time.sleep(1.0)  # several more listings: nothing fires twice, the disabled one stays quiet

    fired = {e["drop_id"]: (t, e) for t, e, _ in handler.calls}
    assert len(handler.calls) == 2 and set(fired) == {"d1", "d2"}
    assert fired["d1"][1] == {"drop_id": "d1", "action": "start"}  # exactly the Input JSON
    for t, _ in fired.values():
        assert -0.05 <= t - at <= 0.5
    assert handler.calls[0][2].function_name == "drop_lifecycle"
    assert set(targets) == {function_arn("drop_lifecycle")}
    names = {s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]}
    assert names == {"paris", "off"}  # DELETE after completion removed "start"
    for name in names:
        scheduler.delete_schedule(Name=name, GroupName=group)


def test_failing_schedule_targets_are_retried_then_dropped(messaging_endpoint, schedule_group):
    scheduler, group = schedule_group

    def flaky(event, call):
        if call < 3:
            raise RuntimeError("not yet")

    flaky_handler = Recorder(flaky)
    broken = Recorder(lambda event, call: 1 / 0)
    handlers = {"flaky": flaky_handler, "broken": broken}
    past = datetime.fromtimestamp(time.time() - 5, UTC)
    for name in handlers:
        _create_at(scheduler, group, name, past, {"n": name}, function=name, ActionAfterCompletion="DELETE")

    pump = SchedulePump(messaging_endpoint, group, lambda arn: handlers[arn.rsplit(":", 1)[-1]], retry_backoff=0.02)
    with pump:
        assert wait_until(lambda: not scheduler.list_schedules(GroupName=group)["Schedules"], timeout=5)
        assert pump.running
    assert len(flaky_handler.calls) == 3  # two failures, then success
    assert len(broken.calls) == 4  # the first try plus 3 retries, then dropped


# ---------------------------------------------------------------------------------------------- lifecycle


def test_pumps_start_and_stop_together_promptly(aws_endpoint, messaging_endpoint, stream_table, schedule_group):
    _, table = stream_table
    _, group = schedule_group
    _, url, _ = _queue(messaging_endpoint)
    pumps = [
        StreamPump(aws_endpoint, table, Recorder()),
        QueuePump(messaging_endpoint, url, Recorder()),
        SchedulePump(messaging_endpoint, group, lambda arn: Recorder()),
    ]
    pump_set = start_all(pumps)
    assert all(p.running for p in pump_set)
    time.sleep(0.3)
    started = time.monotonic()
    stop_all(pumps)
    assert time.monotonic() - started < 1.0
    assert not any(p.running for p in pumps)

    with pytest.raises(ClientError):  # a missing source fails start(), not the thread later
        QueuePump(messaging_endpoint, url + "-missing", Recorder()).start()


def test_a_batching_window_gathers_a_trickle_into_one_batch(messaging_endpoint):
    sqs, url, _ = _queue(messaging_endpoint, visibility=120)
    handler = Recorder()
    with QueuePump(messaging_endpoint, url, handler, batch_size=10, batching_window_s=60):
        for i in range(4):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
        # Four messages and a 60 s window: nothing is invoked while the batch is short and the window open.
        seen = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        deadline = time.monotonic() + 30
        while seen["Attributes"]["ApproximateNumberOfMessagesNotVisible"] != "4" and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        assert seen["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "4"
        assert handler.calls == []
        for i in range(4, 10):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
        deadline = time.monotonic() + 50
        while not handler.calls and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(handler.calls) == 1
    assert sorted(r["body"] for r in handler.calls[0][1]["Records"]) == [f"m{i}" for i in range(10)]
