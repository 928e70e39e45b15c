"""The dev stack's own tests runs against the session's dev stack, started before its first test."""

from __future__ import annotations

import pytest

from devstack.stack import DevStack


@pytest.fixture(scope="session", autouse=True)
def _dev_stack(stack: DevStack) -> DevStack:
    return stack
