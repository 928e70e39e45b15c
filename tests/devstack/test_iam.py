"""IAM in the dev stack: what a function's calls ask for, and what its policy lets through."""

from __future__ import annotations

import fnmatch
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.threads import in_context
from devstack import iam
from devstack.iam_requests import CallSite, Request, matches, requests_for
from devstack.identity import ACCOUNT_ID, REGION, arn, queue_arn

SITE = CallSite("dynamodb", REGION, ACCOUNT_ID, "api1", "api")


def table_arn(name: str) -> str:
    settings = get_settings()
    return f"arn:aws:dynamodb:{settings.region}:{settings.account_id}:table/{settings.table_name(name)}"


def scan_connections() -> None:
    aws.client("dynamodb").scan(TableName=get_settings().table_name("Connections"), Limit=1)


# --- what calls ask for -----------------------------------------------------------------------------
def test_a_query_on_an_index_asks_for_the_index_and_a_transaction_for_each_item() -> None:
    assert requests_for(SITE, "Query", {"TableName": "T", "IndexName": "by_user"}) == [
        Request("dynamodb:Query", arn("dynamodb", "table/T/index/by_user"))
    ]
    transaction = {
        "TransactItems": [
            {"ConditionCheck": {"TableName": "Drops"}},
            {"Update": {"TableName": "Drops"}},
            {"Put": {"TableName": "Orders"}},
        ]
    }
    assert [
        (r.action, r.resource.rsplit("/", 1)[1]) for r in requests_for(SITE, "TransactWriteItems", transaction)
    ] == [
        ("dynamodb:ConditionCheckItem", "Drops"),
        ("dynamodb:UpdateItem", "Drops"),
        ("dynamodb:PutItem", "Orders"),
    ]
    batch = requests_for(SITE, "BatchGetItem", {"RequestItems": {"A": {}, "B": {}}})
    assert [r.resource.rsplit("/", 1)[1] for r in batch] == ["A", "B"]


def test_queues_schedules_and_connections_are_named_by_their_arns() -> None:
    sqs = CallSite("sqs", REGION, ACCOUNT_ID, "api1", "api")
    assert requests_for(sqs, "DeleteMessageBatch", {"QueueUrl": f"http://127.0.0.1:5000/{ACCOUNT_ID}/q1"}) == [
        Request("sqs:DeleteMessage", queue_arn("q1"))
    ]
    scheduler = CallSite("scheduler", REGION, ACCOUNT_ID, "api1", "api")
    created = requests_for(
        scheduler, "CreateSchedule", {"Name": "s1", "GroupName": "g", "Target": {"RoleArn": "arn:aws:iam::1:role/r"}}
    )
    assert created == [
        Request("scheduler:CreateSchedule", arn("scheduler", "schedule/g/s1")),
        Request("iam:PassRole", "arn:aws:iam::1:role/r", (("iam:PassedToService", "scheduler.amazonaws.com"),)),
    ]
    management = CallSite("apigatewaymanagementapi", REGION, ACCOUNT_ID, "api1", "api")
    assert requests_for(management, "PostToConnection", {"ConnectionId": "c1", "Data": b""}) == [
        Request("execute-api:ManageConnections", arn("execute-api", "api1/api/POST/@connections/c1"))
    ]


@given(
    pattern=st.text(alphabet="ab:/*?", max_size=8),
    value=st.text(alphabet="ab:/", max_size=8),
)
def test_resource_wildcards_match_as_iam_matches_them(pattern: str, value: str) -> None:
    # IAM's * and ? are glob wildcards that also cross "/" and ":" (fnmatch's, without its [sets]).
    assert matches(pattern, value) == fnmatch.fnmatchcase(value, pattern)


def test_actions_match_without_regard_to_case_and_resources_with() -> None:
    assert matches("dynamodb:GetItem", "DynamoDB:getitem", ignore_case=True)
    assert not matches("arn:aws:sqs:us-east-1:1:Queue", "arn:aws:sqs:us-east-1:1:queue")


# --- enforcement ------------------------------------------------------------------------------------
def test_a_call_the_role_does_not_grant_raises_what_aws_raises(stack) -> None:
    with iam.acting_as("fanout"):
        scan_connections()
        with stack.iam.revoked("fanout", "dynamodb:Scan"), pytest.raises(ClientError) as denied:
            scan_connections()
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    prefix = get_settings().table_prefix
    assert error["Message"] == (
        f"User: arn:aws:sts::{get_settings().account_id}:assumed-role/{prefix}fanout-role/{prefix}fanout "
        f"is not authorized to perform: dynamodb:Scan on resource: {table_arn('Connections')} "
        "because no identity-based policy allows the dynamodb:Scan action"
    )


def test_a_role_that_reads_an_index_may_not_query_its_table(stack) -> None:
    client = aws.client("dynamodb")
    table = get_settings().table_name("Connections")
    query = {"KeyConditionExpression": "user_id = :u", "ExpressionAttributeValues": {":u": {"S": "u_nobody"}}}
    with iam.acting_as("deliver"), stack.iam.expecting_denials():
        client.query(TableName=table, IndexName="by_user", **query)
        with pytest.raises(ClientError) as denied:
            client.query(
                TableName=table,
                KeyConditionExpression="connection_id = :c",
                ExpressionAttributeValues={":c": {"S": "x"}},
            )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"on resource: {table_arn('Connections')} " in denied.value.response["Error"]["Message"]


def test_every_service_says_no_in_its_own_words(stack) -> None:
    settings = get_settings()
    with iam.acting_as("ws_connect"), stack.iam.expecting_denials():
        with pytest.raises(ClientError) as sns:
            aws.client("sns").publish(TopicArn=settings.events_topic_arn, Message="{}")
        with pytest.raises(ClientError) as sqs:
            aws.client("sqs").send_message(QueueUrl=settings.queue_url("deliver"), MessageBody="{}")
    assert sns.value.response["Error"]["Code"] == "AuthorizationError"
    assert "perform: SNS:Publish on resource: " + settings.events_topic_arn in sns.value.response["Error"]["Message"]
    assert sqs.value.response["Error"]["Code"] == "AccessDenied"
    assert "perform: sqs:sendmessage on resource: arn:aws:sqs:" in sqs.value.response["Error"]["Message"]


def test_public_cognito_calls_need_no_grant(stack) -> None:
    settings = get_settings()
    client = aws.client("cognito-idp")
    with iam.acting_as("ws_connect"), stack.iam.expecting_denials():
        with pytest.raises(ClientError) as refused:
            client.initiate_auth(
                ClientId=settings.user_pool_client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": f"nobody-{uuid.uuid4().hex}@example.com", "PASSWORD": "Wrong0ne!"},
            )
        with pytest.raises(ClientError) as admin:
            client.admin_get_user(UserPoolId=settings.user_pool_id, Username="nobody@example.com")
    assert refused.value.response["Error"]["Code"] != "AccessDeniedException"
    assert admin.value.response["Error"]["Code"] == "AccessDeniedException"


def test_calls_outside_any_function_are_not_checked(stack) -> None:
    assert iam.current_function() is None
    with stack.iam.revoked("fanout", "dynamodb:Scan"):
        scan_connections()


def test_a_denial_is_logged_once_with_the_functions_name(stack, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="devstack.iam")
    with iam.acting_as("ws_disconnect"), stack.iam.expecting_denials():
        for _ in range(3):
            with pytest.raises(ClientError):
                aws.client("sns").publish(TopicArn=get_settings().events_topic_arn, Message="{}")
    lines = [r.getMessage() for r in caplog.records if "ws_disconnect" in r.getMessage()]
    assert len(lines) == 1 and "sns:Publish" in lines[0]


def test_the_function_follows_work_handed_to_worker_threads(stack) -> None:
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        iam.acting_as("fanout"),
        stack.iam.revoked("fanout", "dynamodb:Scan"),
    ):
        carried = pool.submit(in_context(scan_connections))
        with pytest.raises(ClientError):
            carried.result()
        assert pool.submit(in_context(iam.current_function)).result() == "fanout"
        # Without in_context a worker thread would not know whose call it is, and nothing would be checked.
        assert pool.submit(iam.current_function).result() is None


def test_queue_pollers_poll_with_the_role_of_the_function_they_feed(stack) -> None:
    settings = get_settings()
    queue = f"arn:aws:sqs:{settings.region}:{settings.account_id}:{settings.table_prefix}notify"
    denial = ("fanout", "sqs:ReceiveMessage", queue)
    with stack.iam.revoked("fanout", "sqs:ReceiveMessage"):
        before = len(stack.iam.denied)
        deadline = time.time() + 30
        while denial not in stack.iam.denied[before:] and time.time() < deadline:
            time.sleep(0.05)
    assert denial in stack.iam.denied[before:]


def test_stream_pollers_read_with_the_role_of_the_function_they_feed(stack) -> None:
    # The pumps read streams on the wire (devstack.pollers.wire), not through botocore: still checked.
    with stack.iam.revoked("domain_events", "dynamodb:GetRecords"):
        before = len(stack.iam.denied)
        deadline = time.time() + 30
        while not _denied_get_records(stack.iam.denied[before:]) and time.time() < deadline:
            time.sleep(0.05)
        found = _denied_get_records(stack.iam.denied[before:])
    assert found, "no GetRecords of domain_events was refused"


def _denied_get_records(denied):
    return [d for d in denied if d[0] == "domain_events" and d[1] == "dynamodb:GetRecords" and "/stream/" in d[2]]


def test_policies_name_every_action_and_scan_only_the_tables_listed_for_it(stack) -> None:
    from chalicelib.schema.functions import ACCESS

    for function, statements in stack.iam.policies.items():
        scanned = set()
        for statement in statements:
            assert all("*" not in action for action in statement.actions), (function, statement)
            if "dynamodb:Scan" in statement.actions:
                scanned |= {resource.rsplit("/", 1)[1] for resource in statement.resources}
        assert scanned == {get_settings().table_name(t) for t in ACCESS[function].scan}, function
