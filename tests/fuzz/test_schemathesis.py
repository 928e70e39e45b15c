"""Schemathesis against the dev stack with the OpenAPI document, signed in, every operation:
no 5xx, and every response matches the document. `make fuzz` runs the long version."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.edge.openapi import document

EXAMPLES = int(os.environ.get("LIVEDROP_FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
schema = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def fuzz_user(api, new_user_factory):
    return new_user_factory(name="Fuzzer", creator=True)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms(case, api, fuzz_user) -> None:
    case.call_and_validate(
        base_url=api.base_url,
        session=api.session,
        headers={"Authorization": f"Bearer {fuzz_user.token}"},
        checks=CHECKS,
    )
