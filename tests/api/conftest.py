"""The API tier runs against the session's dev stack, started before its first test.

Every success response a test of this tier receives is checked against the schema declared for its
route and status (tests/contract.py): a response that drifts from its type fails that test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.schema.responses import ROUTES
from devstack.stack import DevStack
from tests.contract import ResponseChecker
from tests.support import Api


@pytest.fixture(scope="session", autouse=True)
def _dev_stack(stack: DevStack) -> DevStack:
    return stack


@pytest.fixture(scope="session")
def response_checker(api: Api) -> Iterator[ResponseChecker]:
    checker = ResponseChecker(api.base_url)
    api.session.hooks["response"].append(checker)
    yield checker
    # Shown with -s: which declared JSON answers this run never received, so never checked.
    declared = {(method, path) for (method, path), bodies in ROUTES.items() if any(bodies.values())}
    unchecked = sorted(declared - {(method, path) for method, path, _ in checker.seen})
    print(f"\nresponse contract: {checker.checked} success responses checked; never received: {unchecked}")
    api.session.hooks["response"].remove(checker)


@pytest.fixture(autouse=True)
def _responses_as_declared(request: pytest.FixtureRequest, response_checker: ResponseChecker) -> Iterator[None]:
    mark = len(response_checker.found)
    yield
    if request.node.get_closest_marker("corrupt_data"):
        return  # what the server shows of an impossible item is defensive, not a declared type
    drifted = response_checker.since(mark)
    assert not drifted, "responses drifted from chalicelib/schema/responses.py:\n" + "\n".join(drifted[:20])
