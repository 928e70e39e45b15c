"""One fake AWS identity: the embedded AWS, the app's settings and every local event name the same account."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from chalicelib.core.config import settings_from_env
from devstack import identity
from devstack.lambda_runtime import LambdaContext
from devstack.resources import base_env

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_aws_hands_out_arns_of_the_fake_account(messaging_endpoint) -> None:
    sqs = identity.aws_client("sqs", messaging_endpoint)
    name = f"identity-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    try:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert arn == identity.queue_arn(name)
        assert url.endswith(f"/{identity.ACCOUNT_ID}/{name}")
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_the_apps_settings_name_the_same_account_and_region_as_the_dev_stack() -> None:
    stack = settings_from_env(base_env("http://127.0.0.1:1"))
    assert (stack.region, stack.account_id) == (identity.REGION, identity.ACCOUNT_ID)
    assert stack.function_arn("drop_lifecycle") == identity.function_arn("livedrop-dev-drop_lifecycle")
    # The settings' own defaults (what a test without the dev stack's environment gets) agree too.
    bare = settings_from_env({})
    assert (bare.region, bare.account_id) == (identity.REGION, identity.ACCOUNT_ID)


def test_a_local_lambda_context_carries_the_functions_arn_in_the_fake_account() -> None:
    assert LambdaContext("fanout").invoked_function_arn == identity.function_arn("fanout")


def test_the_fake_account_and_region_are_spelled_only_in_the_identity_module() -> None:
    spelled = re.compile(r"123456789012|[\"']us-east-1[\"']|[\"']testing[\"']")
    places = [*(ROOT / "devstack").rglob("*.py"), *(ROOT / "tests" / "devstack").glob("*.py")]
    here = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in places
        if path.resolve() not in (here, (ROOT / "devstack" / "identity.py").resolve())
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert found == []
