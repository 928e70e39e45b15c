"""One embedded AWS for the whole session, provisioned from the models before chalicelib loads.

pytest_configure runs before test modules are collected, so a module may import app or chalicelib
at its top and still get models bound to this session's endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.moto_backend import EmbeddedAws

_aws = EmbeddedAws()
_env: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    if _env:
        return
    os.environ["LIVEDROP_TABLE_PREFIX"] = "livedrop-test-"
    endpoint = _aws.start()
    from devstack.resources import provision

    _env.update(provision(endpoint, stage="test"))


def pytest_unconfigure(config: pytest.Config) -> None:
    _aws.stop()


@pytest.fixture(scope="session")
def aws_endpoint() -> str:
    """The session's embedded AWS endpoint (tables, topic, queues, pool already created)."""
    return _aws.endpoint


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """The environment the app runs with in this session."""
    return dict(_env)


@pytest.fixture(scope="session")
def app_module() -> Iterator[object]:
    """app.py, imported once against the session's embedded AWS."""
    import app

    yield app


@pytest.fixture(scope="session")
def gateway(app_module: object) -> Iterator[object]:
    """The dev stack's REST gateway serving the app in this process (on a free loopback port)."""
    from chalicelib.tokens import verifier
    from devstack.http_gateway import HttpGateway

    gw = HttpGateway(app_module.app, verifier().claims)  # type: ignore[attr-defined]
    gw.start()
    yield gw
    gw.stop()


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
