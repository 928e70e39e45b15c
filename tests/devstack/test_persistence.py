"""`--data DIR`: the embedded AWS saves its state on a clean stop and restores it at start, so users
(their logins too), drops, follows and orders survive a restart; what belongs to one run only
(stream records and iterators, SQS receipts) does not come back."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
import requests

from devstack.identity import client_kwargs, function_arn
from devstack.moto_backend import DYNAMODB, EmbeddedAws
from devstack.persistence import PersistenceError
from tests.devstack.test_devstack_process import ROOT, _free_port
from tests.support import wait_for

# Slow: dev stacks of its own, restarted (make test starts files with slow tests first).
pytestmark = pytest.mark.slow

READY = "LiveDrop dev stack ready"


@contextmanager
def devstack(data_dir: Path) -> Iterator[tuple[str, str]]:
    """`python -m devstack --data data_dir` on free ports until the block ends (then Ctrl-C, exit 0)."""
    http_port, ws_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDROP_")}
    command = [sys.executable, "-m", "devstack", "--http-port", str(http_port), "--ws-port", str(ws_port)]
    process = subprocess.Popen(
        [*command, "--data", str(data_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.strip() == READY:
                break
        assert lines and lines[-1] == READY, "\n".join(lines)
        yield f"http://127.0.0.1:{http_port}", "\n".join(lines)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=150)
        assert process.returncode == 0, "\n".join(lines) + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def call(base: str, method: str, path: str, token: str | None = None, expect: int = 200, **kw) -> dict:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = requests.request(method, base + path, headers=headers, timeout=30, **kw)
    assert response.status_code == expect, (method, path, response.status_code, response.text)
    return response.json() if response.content else {}


def person(email: str, password: str) -> dict:
    return {"email": email, "password": password, "name": email.split("@")[0]}


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def buy(base: str, token: str, drop_id: str, card: str, quantity: int = 1) -> dict:
    body = {"drop_id": drop_id, "quantity": quantity, "payment_token": card}
    return call(base, "POST", "/orders", token, 201, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


def test_users_drops_follows_and_orders_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "devdata"
    password = "Passw0rd!" + uuid.uuid4().hex[:6]
    with devstack(data) as (base, _):
        owner = call(base, "POST", "/auth/signup", None, 201, json=person("o@e.com", password))
        fan = call(base, "POST", "/auth/signup", None, 201, json=person("f@e.com", password))
        owner_token = call(base, "POST", "/auth/login", json={"email": "o@e.com", "password": password})["id_token"]
        fan_token = call(base, "POST", "/auth/login", json={"email": "f@e.com", "password": password})["id_token"]
        creator = call(base, "POST", "/creators", owner_token, 201, json={"name": "Studio"})
        creator_id = creator["creator_id"]
        product = call(
            base,
            "POST",
            f"/creators/{creator_id}/products",
            owner_token,
            201,
            json={"name": "Print", "price_cents": 500, "currency": "USD"},
        )
        drop = call(
            base,
            "POST",
            f"/creators/{creator_id}/drops",
            owner_token,
            201,
            json={"product_id": product["product_id"], "start_time": iso(-5), "end_time": iso(3600), "stock": 20},
        )
        call(base, "POST", f"/creators/{creator_id}/follow", fan_token)
        paid = buy(base, fan_token, drop["drop_id"], "tok_visa", 2)
        waiting = buy(base, fan_token, drop["drop_id"], "tok_threeDSecureRequired")
        wait_for(lambda: call(base, "GET", f"/orders/{paid['order_id']}", fan_token)["status"] == "confirmed")
        sales_before = call(base, "GET", f"/drops/{drop['drop_id']}/sales", owner_token)
        # A drop due to start while the stack is down: its schedule must still fire after the restart.
        # Its start is well after the stop's few seconds: the drop_lifecycle invocation the early-firing
        # schedule starts now waits for that second, and a start written while the stack stops (stream
        # pumps already stopped) would lose its event (devstack/persistence.py: stream records are not
        # kept). A stop discards an invocation still running after POOL_STOP_SECONDS, so none writes later.
        starts_at = time.time() + 15
        later = call(
            base,
            "POST",
            f"/creators/{creator_id}/drops",
            owner_token,
            201,
            json={"product_id": product["product_id"], "start_time": iso(15), "end_time": iso(3600), "stock": 5},
        )
        drops_before = call(base, "GET", "/drops?limit=100")["items"]
    manifest = json.loads((data / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["aws", "aws-messaging"]
    wait_for(lambda: time.time() > starts_at + 1)

    with devstack(data) as (base, banner):
        assert "Demo user:" in banner
        # The demo is not created a second time on top of the restored one.
        assert sorted(d["drop_id"] for d in call(base, "GET", "/drops?limit=100")["items"]) == sorted(
            d["drop_id"] for d in drops_before
        )
        # A token from before the restart is still good, and the password still logs in.
        assert call(base, "GET", "/me", fan_token)["user_id"] == fan["user_id"]
        fresh = call(base, "POST", "/auth/login", json={"email": "o@e.com", "password": password})["id_token"]
        assert call(base, "GET", "/me", fresh)["creator_id"] == creator_id
        call(base, "POST", "/auth/login", None, 401, json={"email": "o@e.com", "password": password + "x"})
        assert call(base, "GET", f"/orders/{paid['order_id']}", fan_token)["status"] == "confirmed"
        listed = {o["order_id"] for o in call(base, "GET", f"/users/{fan['user_id']}/orders", fan_token)["items"]}
        assert listed == {paid["order_id"], waiting["order_id"]}
        assert call(base, "GET", f"/drops/{drop['drop_id']}")["stock"] == 17
        following = call(base, "GET", f"/users/{fan['user_id']}/following", fan_token)["items"]
        assert [f["creator_id"] for f in following] == [creator_id]
        # The series runs up to now: a restart that crosses a slot's boundary adds empty slots, nothing else.
        sales_after = call(base, "GET", f"/drops/{drop['drop_id']}/sales", fresh)
        grown, kept = sales_after.pop("series"), sales_before.pop("series")
        assert grown[: len(kept)] == kept and all(point["sold"] == 0 for point in grown[len(kept) :])
        assert sales_after == sales_before
        assert owner["user_id"] == call(base, "GET", "/me", fresh)["user_id"]
        started = wait_for(
            lambda: [
                n
                for n in call(base, "GET", f"/users/{fan['user_id']}/notifications", fan_token)["items"]
                if n["type"] == "drop_started" and n["drop_id"] == later["drop_id"]
            ],
            # Its schedule may have fired just before the stop (Scheduler fires up to 60 s early), leaving
            # the 1-minute sweeper to start it: bounded by two sweeps, not by a speed.
            timeout=180,
        )
        assert len(started) == 1
        # The event pipeline runs on the restored state: a new order is paid and counted.
        again = buy(base, fan_token, drop["drop_id"], "tok_visa")
        wait_for(lambda: call(base, "GET", f"/orders/{again['order_id']}", fan_token)["status"] == "confirmed")
        sales = call(base, "GET", f"/drops/{drop['drop_id']}/sales", fresh)
        assert sales["orders"]["confirmed"] == 2 and sales["units_sold"] == 3 and sales["stock"] == 16


def _client(service: str, endpoint: str):
    return boto3.session.Session().client(service, **client_kwargs(endpoint))


@pytest.fixture()
def embedded(tmp_path: Path):
    """Starts an embedded AWS on tmp_path's data folder (stopping the previous one cleanly): a restart."""
    started: list[EmbeddedAws] = []

    def start() -> EmbeddedAws:
        for running in started:
            running.stop()
        aws = EmbeddedAws(data_dir=tmp_path, group="test")
        aws.start()
        started.append(aws)
        return aws

    yield start
    for running in started:
        running.stop()


def test_in_flight_messages_come_back_visible_and_stream_records_do_not(embedded) -> None:
    endpoint = embedded().endpoint
    sqs, dynamodb = _client("sqs", endpoint), _client("dynamodb", endpoint)
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "3600"})["QueueUrl"]
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    in_flight = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.put_item(TableName="t", Item={"k": {"S": "before"}})
    old_records = _stream_records(endpoint)
    assert [r["dynamodb"]["Keys"]["k"]["S"] for r in old_records] == ["before"]

    endpoint = embedded().endpoint
    sqs, dynamodb = _client("sqs", endpoint), _client("dynamodb", endpoint)
    url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
    # The old receipt handle was for the last run: it deletes nothing now.
    with contextlib.suppress(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=in_flight["ReceiptHandle"])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == ["a", "b"]
    for message in received:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    assert dynamodb.get_item(TableName="t", Key={"k": {"S": "before"}})["Item"]
    dynamodb.put_item(TableName="t", Item={"k": {"S": "after"}})
    records = _stream_records(endpoint)
    assert [r["dynamodb"]["Keys"]["k"]["S"] for r in records] == ["after"]
    old, new = old_records[0]["dynamodb"]["SequenceNumber"], records[0]["dynamodb"]["SequenceNumber"]
    assert int(new) > int(old)


def _stream_records(endpoint: str) -> list[dict]:
    dynamodb, streams = _client("dynamodb", endpoint), _client("dynamodbstreams", endpoint)
    arn = dynamodb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]


def test_a_past_schedule_is_kept_and_a_killed_run_saves_nothing(embedded, tmp_path: Path) -> None:
    scheduler = _client("scheduler", embedded().endpoint)
    scheduler.create_schedule(
        Name="start-1",
        ScheduleExpression="at(2020-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn("x"), "RoleArn": "arn:aws:iam::1:role/r"},
    )
    # Restored as it was: the schedule pump fires an at() in the past as soon as it sees it.
    running = embedded()
    scheduler = _client("scheduler", running.endpoint)
    assert scheduler.get_schedule(Name="start-1")["ScheduleExpression"] == "at(2020-01-01T00:00:00)"
    scheduler.delete_schedule(Name="start-1")
    assert running.pid is not None
    os.kill(running.pid, signal.SIGKILL)  # a crash: no save, the last clean stop's state stays
    running.stop()
    scheduler = _client("scheduler", embedded().endpoint)
    assert scheduler.get_schedule(Name="start-1")["Name"] == "start-1"


def test_a_state_from_another_version_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "test.state").write_bytes(pickle.dumps({"format": 1, "moto": "0.0.1", "backends": {}}))
    aws = EmbeddedAws(data_dir=tmp_path, group="test")
    with pytest.raises(PersistenceError, match="test.state was saved by another version"):
        aws.start(timeout=60)


def _put(endpoint: str, key: str) -> None:
    """A row in DynamoDB's process and a queue in the messaging process: one step of state in each."""
    dynamodb = _client("dynamodb", endpoint.split("|")[0])
    if "t" not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    dynamodb.put_item(TableName="t", Item={"k": {"S": key}})
    _client("sqs", endpoint.split("|")[1]).create_queue(QueueName=f"q-{key}")


def _state(aws: EmbeddedAws) -> tuple[list[str], list[str]]:
    rows = _client("dynamodb", aws.endpoint).scan(TableName="t")["Items"]
    queues = _client("sqs", aws.messaging_endpoint).list_queues().get("QueueUrls", [])
    return sorted(r["k"]["S"] for r in rows), sorted(url.rsplit("/q-", 1)[1] for url in queues)


def test_a_snapshot_is_saved_by_every_process_together_or_not_at_all(tmp_path: Path) -> None:
    """issue 24 #7: a killed DynamoDB process must not leave the messaging process's later state current."""
    with EmbeddedAws(data_dir=tmp_path) as first:
        _put(f"{first.endpoint}|{first.messaging_endpoint}", "one")
    saved = json.loads((tmp_path / "manifest.json").read_text())

    second = EmbeddedAws(data_dir=tmp_path)
    try:
        second.start()
        assert _state(second) == (["one"], ["one"])
        _put(f"{second.endpoint}|{second.messaging_endpoint}", "two")
        os.kill(second.processes[DYNAMODB].pid or 0, signal.SIGKILL)
    finally:
        second.stop()  # the messaging process still saves its part of the run: an incomplete snapshot
    assert json.loads((tmp_path / "manifest.json").read_text()) == saved

    with EmbeddedAws(data_dir=tmp_path) as third:
        assert _state(third) == (["one"], ["one"])  # both processes as at the last complete save
    current = json.loads((tmp_path / "manifest.json").read_text())
    assert current["generation"] != saved["generation"]
    # The incomplete generation's file and the previous snapshot's are gone; only the current one's stay.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*current["files"].values(), "manifest.json"])


def _saved_folder(tmp_path: Path) -> dict:
    with EmbeddedAws(data_dir=tmp_path) as aws:
        _put(f"{aws.endpoint}|{aws.messaging_endpoint}", "one")
    return json.loads((tmp_path / "manifest.json").read_text())


def test_a_missing_or_mismatched_file_is_refused_naming_it(tmp_path: Path) -> None:
    manifest = _saved_folder(tmp_path)
    messaging = tmp_path / manifest["files"]["aws-messaging"]
    kept = messaging.read_bytes()
    messaging.unlink()
    with pytest.raises(PersistenceError, match=f"{messaging.name} is missing"):
        EmbeddedAws(data_dir=tmp_path).start()
    # Another generation's file put in its place (say, from a backup): refused, not restored as half.
    dynamodb = tmp_path / manifest["files"]["aws"]
    messaging.write_bytes(dynamodb.read_bytes())
    with pytest.raises(PersistenceError, match=f"{messaging.name} belongs to another snapshot"):
        EmbeddedAws(data_dir=tmp_path).start(timeout=60)
    messaging.write_bytes(kept)
    with EmbeddedAws(data_dir=tmp_path) as restored:
        assert _state(restored) == (["one"], ["one"])


@pytest.mark.parametrize("problem", ["corrupt", "wrong shape", "a directory", "missing", "bad manifest", "a file"])
def test_every_start_problem_is_one_line_and_exit_1(tmp_path: Path, problem: str) -> None:
    """issue 24 #8: `python -m devstack --data DIR` on a folder it cannot restore says so in one line."""
    data = tmp_path / "devdata"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"generation": "g1", "files": {n: f"{n}.g1.state" for n in NAMES}}))
    named = data / "aws.g1.state"
    (data / "aws-messaging.g1.state").write_bytes(b"")
    if problem == "corrupt":
        named.write_bytes(b"\x80\x05not a pickle")
    elif problem == "wrong shape":
        named.write_bytes(pickle.dumps(["a", "list"]))
    elif problem == "a directory":
        named.mkdir()
    elif problem == "bad manifest":
        named = data / "manifest.json"
        named.write_text("[1, 2")
    elif problem == "a file":
        named = tmp_path / "plain"
        named.write_text("x")
        data = named
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDROP_")}
    command = [sys.executable, "-m", "devstack", "--http-port", "0", "--ws-port", "0", "--data", str(data)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(named) in lines[0] and "devstack: " in lines[0]


NAMES = ("aws", "aws-messaging")


def test_a_table_restored_from_an_older_schema_gets_the_indexes_it_lacks(embedded) -> None:
    from chalicelib.schema.models import Order, table_spec
    from devstack.persistence import add_missing_indexes

    # This embedded AWS is the test's own: the Orders table as it was before the by_drop index.
    dynamodb = _client("dynamodb", embedded().endpoint)
    create = table_spec(Order)["create"]
    indexes = [index for index in create["GlobalSecondaryIndexes"] if index["IndexName"] != "by_drop"]
    attributes = [a for a in create["AttributeDefinitions"] if a["AttributeName"] != "drop_id"]
    dynamodb.create_table(**{**create, "GlobalSecondaryIndexes": indexes, "AttributeDefinitions": attributes})
    item = {"order_id": {"S": "or_1"}, "user_id": {"S": "u"}, "drop_id": {"S": "dr_1"}, "created_at": {"N": "5"}}
    dynamodb.put_item(TableName=create["TableName"], Item=item)
    assert add_missing_indexes(dynamodb) == [f"{create['TableName']}/by_drop"]
    assert add_missing_indexes(dynamodb) == []
    found = dynamodb.query(
        TableName=create["TableName"],
        IndexName="by_drop",
        KeyConditionExpression="drop_id = :d",
        ExpressionAttributeValues={":d": {"S": "dr_1"}},
    )["Items"]
    assert [i["order_id"]["S"] for i in found] == ["or_1"]
