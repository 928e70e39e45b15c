"""One dev stack for the whole session, started before chalicelib loads.

pytest_configure runs before test modules are collected, so a module may import app or chalicelib
at its top and still get models bound to this session's endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.stack import DevStack

_stack = DevStack(http_port=0, ws_port=0, stage="test")
_started: list[bool] = []


def pytest_configure(config: pytest.Config) -> None:
    if _started:
        return
    os.environ["LIVEDROP_TABLE_PREFIX"] = "livedrop-test-"
    _stack.start()
    _started.append(True)


def pytest_unconfigure(config: pytest.Config) -> None:
    _stack.stop()


@pytest.fixture(scope="session")
def stack() -> DevStack:
    """The whole dev stack of this session: embedded AWS, gateways, pumps, app (loopback, free ports)."""
    return _stack


@pytest.fixture(scope="session")
def aws_endpoint() -> str:
    """The session's embedded DynamoDB (and Streams) endpoint, tables already created."""
    return _stack.aws.endpoint


@pytest.fixture(scope="session")
def messaging_endpoint() -> str:
    """The endpoint of the session's SQS, SNS, Scheduler and Cognito (DynamoDB has its own process)."""
    return _stack.aws.messaging_endpoint


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """The environment the app runs with in this session."""
    return dict(_stack.env)


@pytest.fixture(scope="session")
def app_module() -> object:
    """app.py, imported once against the session's embedded AWS."""
    return _stack.app_module


@pytest.fixture(scope="session")
def gateway() -> object:
    """The REST gateway serving the app (on a free loopback port)."""
    return _stack.http


@pytest.fixture(scope="session")
def api(gateway: object) -> Iterator[object]:
    """An HTTP client of the REST gateway."""
    from tests.support import Api

    client = Api(gateway.url)  # type: ignore[attr-defined]
    yield client
    client.close()


@pytest.fixture()
def new_user(api: object) -> object:
    """A factory of signed-up, logged-in users."""
    from tests.support import sign_up_user

    return lambda **kw: sign_up_user(api, **kw)


@pytest.fixture(scope="session")
def new_user_factory(api: object) -> object:
    """A session-scoped factory of signed-up, logged-in users (for module-scoped fixtures)."""
    from tests.support import sign_up_user

    return lambda **kw: sign_up_user(api, **kw)
