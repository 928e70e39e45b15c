"""The unit tier (`make unit`): no dev stack, no server, no socket.

AWS is moto inside this process (moto.mock_aws): the app's clients and models reach it through the
composition root, given settings of their own with no endpoint. Binding or listening on a socket fails
the test that tries.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

import app
from chalicelib.core.config import Settings, settings_from_env
from chalicelib.schema import topology
from chalicelib.schema.models import create_all_tables
from chalicelib.wiring import bootstrap
from devstack import identity, sdk_data

# What a Lambda would find in its environment, minus any endpoint: moto answers in-process.
UNIT_ENV = {
    "AWS_REGION": identity.REGION,
    "LIVEDROP_STAGE": "unit",
    "LIVEDROP_TABLE_PREFIX": "livedrop-unit-",
    "LIVEDROP_PAYMENT_PROVIDER": "fake",
    "LIVEDROP_USER_POOL_ID": f"{identity.REGION}_unit",
}


class SocketRefused(AssertionError):
    """A unit test tried to serve on a socket."""


@pytest.fixture(autouse=True)
def no_listening_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, *args: Any) -> None:
        raise SocketRefused("the unit tier binds and listens on no socket: this test belongs in a stack tier")

    monkeypatch.setattr(socket.socket, "bind", refuse)
    monkeypatch.setattr(socket.socket, "listen", refuse)


@pytest.fixture(scope="package", autouse=True)
def in_process_aws() -> Iterator[Settings]:
    """moto in this process, with every table, the events topic and the queues; the settings the app runs with."""
    settings = settings_from_env(UNIT_ENV)
    # As in the dev stack: botocore's JSON is parsed once per process, not once per client (PynamoDB
    # builds one per model and thread, so each Hypothesis example's threads parsed it all again).
    sdk_data.install()
    with mock_aws(), bootstrap.override(settings=settings):
        create_all_tables(bootstrap.client("dynamodb"))
        bootstrap.client("sns").create_topic(Name=f"{settings.table_prefix}{topology.EVENTS_TOPIC}")
        for queue in topology.QUEUES:
            url = bootstrap.client("sqs").create_queue(QueueName=f"{settings.table_prefix}{queue.name}")["QueueUrl"]
            assert url == settings.queue_url(queue.name), "the app would send where no queue is"
        yield settings


@pytest.fixture(scope="package")
def app_module(in_process_aws: Settings) -> Any:
    """app.py, whose handlers the tests call directly (as Lambda would)."""
    return app
