"""Test tiers: the unit tier (tests/unit) runs without the dev stack; every other tier shares one dev stack,
started when its first test needs it and stopped at the end of the session.

Importing app or chalicelib has no side effects (the models bind to the settings on first use), so a
module may import them at its top whether or not the stack is up yet.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from devstack.stack import DevStack
from tests.iam_guard import pytest_sessionfinish, pytest_terminal_summary, pytest_testnodedown  # noqa: F401  (hooks)
from tests.support import Api, sign_up_user

UNIT_TIER = Path(__file__).resolve().parent / "unit"

# Tests check behaviour, never timings: Hypothesis's per-example deadline is a timing check that a busy
# machine fails at random, so it is off for every property test.
settings.register_profile("livedrop", deadline=None)
settings.load_profile("livedrop")


def pytest_configure(config: pytest.Config) -> None:
    os.environ["LIVEDROP_TABLE_PREFIX"] = "livedrop-test-"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # The unit tier first: it then runs before any tier has started the dev stack, so its checks that
    # nothing listens hold in a whole run as in `make unit`. Then the files with slow tests (a dev stack
    # of their own, a browser): `make test`'s two workers take files in this order, and a long file
    # begun last would keep one worker busy after the other has finished. `slow(rank=0)` goes before
    # the other slow files: a test that mostly waits (out a retry backoff) for minutes.
    rank: dict[Path, int] = {}
    for item in items:
        marker = item.get_closest_marker("slow")
        if marker is not None:
            rank[item.path] = min(rank.get(item.path, 1), int(marker.kwargs.get("rank", 1)))
    items.sort(key=lambda item: (UNIT_TIER not in Path(item.path).parents, rank.get(item.path, 2)))


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    """The whole dev stack of this session: embedded AWS, gateways, pumps, app (loopback, free ports)."""
    with DevStack(http_port=0, ws_port=0, stage="test") as running:
        yield running


@pytest.fixture()
def app_patch(stack: DevStack) -> Iterator[Callable[..., None]]:
    """monkeypatch.setattr for the app's modules: `app_patch("chalicelib.domain.connections", NAME=value)` sets
    the attributes in the stack's own copy and in every function's environments (each imports the app
    afresh, devstack.app_copies), present and started later; undone after the test."""
    with contextlib.ExitStack() as blocks:
        yield lambda module, **attributes: blocks.enter_context(stack.patched(module, **attributes))


@pytest.fixture(scope="session")
def aws_endpoint(stack: DevStack) -> str:
    """The session's embedded DynamoDB (and Streams) endpoint, tables already created."""
    return stack.aws.endpoint


@pytest.fixture(scope="session")
def messaging_endpoint(stack: DevStack) -> str:
    """The endpoint of the session's SQS, SNS, Scheduler and Cognito (DynamoDB has its own process)."""
    return stack.aws.messaging_endpoint


@pytest.fixture(scope="session")
def stack_env(stack: DevStack) -> dict[str, str]:
    """The environment the app runs with in this session."""
    return dict(stack.env)


@pytest.fixture(scope="session")
def app_module(stack: DevStack) -> object:
    """app.py, wired to the session's embedded AWS."""
    return stack.app_module


@pytest.fixture(scope="session")
def gateway(stack: DevStack) -> object:
    """The REST gateway serving the app (on a free loopback port)."""
    return stack.http


@pytest.fixture(scope="session")
def api(gateway: object) -> Iterator[Api]:
    """An HTTP client of the REST gateway."""
    client = Api(gateway.url)  # type: ignore[attr-defined]
    yield client
    client.close()


@pytest.fixture()
def new_user(api: Api) -> object:
    """A factory of signed-up, logged-in users."""
    return lambda **kw: sign_up_user(api, **kw)


@pytest.fixture(scope="session")
def new_user_factory(api: Api) -> object:
    """A session-scoped factory of signed-up, logged-in users (for module-scoped fixtures)."""
    return lambda **kw: sign_up_user(api, **kw)
