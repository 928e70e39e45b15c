"""Fault injection: each fault reaches boto3 and PynamoDB exactly as AWS's own answer would (an
embedded AWS of the test's own, served with a fault plan), control-plane calls never fail, and a
lost `@connections` post is acknowledged but never delivered."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from websockets.sync.client import connect

from devstack import faults
from devstack.identity import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from devstack.moto_backend import build_app

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def test_specs_parse_to_plans() -> None:
    plan = faults.parse("conflict=0.2, throttle=20%,error=0.05,drop_post=1,seed=7")
    assert (plan.conflict, plan.throttle, plan.error, plan.drop_post, plan.seed) == (0.2, 0.2, 0.05, 1.0, 7)
    assert faults.parse(plan.describe()) == plan
    for off in (None, "", "off", "0"):
        assert not faults.parse(off).active
    for bad in ("conflict", "conflict=2", "conflict=-0.1", "lightning=0.1", "throttle=lots", "seed=x"):
        with pytest.raises(ValueError):
            faults.parse(bad)


@pytest.fixture(scope="module")
def faulty_aws() -> Iterator[Any]:
    """An embedded AWS of this module's own; `serve(plan)` swaps the plan it injects."""
    from werkzeug.serving import make_server

    app = build_app()
    current: dict[str, Any] = {"app": app}
    server = make_server("127.0.0.1", 0, lambda env, start: current["app"](env, start), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Handle:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"

        def serve(self, spec: str) -> None:
            current["app"] = faults.wrap(app, faults.parse(spec))

        def client(self, service: str) -> Any:
            return boto3.session.Session().client(
                service,
                region_name=REGION,
                endpoint_url=self.endpoint,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
                config=NO_RETRIES,
            )

    handle = Handle()
    handle.serve("off")
    dynamodb = handle.client("dynamodb")
    dynamodb.create_table(
        TableName="faulty",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield handle
    server.shutdown()
    server.server_close()


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response


def test_a_conflict_is_a_cancelled_transaction_with_a_transaction_conflict_reason(faulty_aws) -> None:
    faulty_aws.serve("conflict=1")
    dynamodb = faulty_aws.client("dynamodb")
    keys = [f"k{i}-{uuid.uuid4().hex}" for i in range(3)]
    items = [{"Put": {"TableName": "faulty", "Item": {"pk": {"S": key}}}} for key in keys]
    response = _error(lambda: dynamodb.transact_write_items(TransactItems=items))
    assert response["Error"]["Code"] == "TransactionCanceledException"
    codes = [reason["Code"] for reason in response["CancellationReasons"]]
    assert sorted(codes) == ["None", "None", "TransactionConflict"]
    # PynamoDB reads the same reasons (the app's Transaction labels them from there).
    connection = Connection(host=faulty_aws.endpoint, region=REGION, max_retry_attempts=0)
    with pytest.raises(TransactWriteError) as raised:
        connection.transact_write_items(
            [], [], [{"TableName": "faulty", "Item": {"pk": {"S": "p"}}}], [], None, None, None
        )
    assert [r.code for r in raised.value.cancellation_reasons if r] == ["TransactionConflict"]
    # Nothing was written: the transaction never reached the table.
    faulty_aws.serve("off")
    assert not any("Item" in dynamodb.get_item(TableName="faulty", Key={"pk": {"S": key}}) for key in keys)


def test_throttling_answers_as_each_service_throttles(faulty_aws) -> None:
    faulty_aws.serve("throttle=1")
    dynamodb = faulty_aws.client("dynamodb")
    assert (
        _error(lambda: dynamodb.get_item(TableName="faulty", Key={"pk": {"S": "x"}}))["Error"]["Code"]
        == "ProvisionedThroughputExceededException"
    )
    sqs = faulty_aws.client("sqs")
    faulty_aws.serve("off")
    queue = sqs.create_queue(QueueName="faulty")["QueueUrl"]
    topic = faulty_aws.client("sns").create_topic(Name="faulty")["TopicArn"]
    faulty_aws.serve("throttle=1")
    assert _error(lambda: sqs.send_message(QueueUrl=queue, MessageBody="x"))["Error"]["Code"] == "ThrottlingException"
    sns = faulty_aws.client("sns")
    assert _error(lambda: sns.publish(TopicArn=topic, Message="x"))["Error"]["Code"] == "Throttling"
    cognito = faulty_aws.client("cognito-idp")
    refused = _error(lambda: cognito.initiate_auth(ClientId="c", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={}))
    assert refused["Error"]["Code"] == "TooManyRequestsException"
    # The control plane (what provisioning does) never fails.
    assert faulty_aws.client("sqs").get_queue_url(QueueName="faulty")["QueueUrl"] == queue
    faulty_aws.serve("off")


def test_a_5xx_is_an_internal_server_error_that_botocore_retries(faulty_aws) -> None:
    faulty_aws.serve("error=1")
    dynamodb = faulty_aws.client("dynamodb")
    response = _error(lambda: dynamodb.put_item(TableName="faulty", Item={"pk": {"S": "e"}}))
    assert response["Error"]["Code"] == "InternalServerError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    faulty_aws.serve("error=0.5,seed=3")
    retrying = boto3.session.Session().client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=faulty_aws.endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 10, "mode": "standard"}),
    )
    for n in range(10):
        retrying.put_item(TableName="faulty", Item={"pk": {"S": f"r{n}"}})
    faulty_aws.serve("off")
    assert dynamodb.get_item(TableName="faulty", Key={"pk": {"S": "r9"}})["Item"]["pk"]["S"] == "r9"


def test_a_lost_post_is_acknowledged_and_never_delivered(stack, new_user) -> None:
    fan = new_user()
    management = boto3.session.Session().client(
        "apigatewaymanagementapi",
        region_name=REGION,
        endpoint_url=stack.ws.management_endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    with connect(f"{stack.ws_url}?token={fan.token}", open_timeout=30) as ws:
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "pong"}
        from chalicelib.schema.models import Connection as Connections

        (row,) = Connections.by_user.query(fan.user_id)
        # The gateway runs in a process of its own: its plan is set there, as --faults would at start.
        stack.ws.set_faults("drop_post=1")
        try:
            management.post_to_connection(ConnectionId=row.connection_id, Data=b'{"n": 1}')
        finally:
            stack.ws.set_faults("off")
        management.post_to_connection(ConnectionId=row.connection_id, Data=b'{"n": 2}')
        assert json.loads(ws.recv(timeout=30)) == {"n": 2}
