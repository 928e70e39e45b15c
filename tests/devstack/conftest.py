"""The dev stack's own tests runs against the session's dev stack, started before its first test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.identity import aws_client
from devstack.stack import DevStack


@pytest.fixture(scope="session", autouse=True)
def _dev_stack(stack: DevStack) -> DevStack:
    return stack


@pytest.fixture
def stream_table(aws_endpoint: str) -> Iterator[tuple[Any, str]]:
    """A table of its own with a stream of new and old images, keyed by `pk`: (DynamoDB client, name)."""
    ddb = aws_client("dynamodb", aws_endpoint)
    name = f"pumps-table-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    yield ddb, name
    ddb.delete_table(TableName=name)
