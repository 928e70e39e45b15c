"""The Stripe webhook's parsing, as properties: whatever header and body an attacker sends, the webhook
answers with a 4xx domain error (invalid_signature or invalid_request) or acts on a well-formed event, and
never raises anything else (which would be a 500). Through HTTP: tests/api/test_payments.py."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.config import Settings
from chalicelib.core.errors import InvalidRequestError, InvalidSignatureError
from chalicelib.delivery import payments
from chalicelib.edge.web import status_of
from chalicelib.wiring import bootstrap

SECRET = "whsec_unit"
NOW = 1_900_000_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=12,
)
# Bodies shaped like Stripe's with any value in any place, so the parser's every branch is reached.
kinds = st.sampled_from(sorted(payments.WEBHOOK_VERDICTS) + ["charge.refunded"]) | json_values
stripe_like = st.fixed_dictionaries(
    {"type": kinds},
    optional={
        "id": json_values,
        "data": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "object": json_values
                | st.fixed_dictionaries(
                    {},
                    optional={
                        "id": json_values,
                        "metadata": json_values | st.fixed_dictionaries({}, optional={"order_id": json_values}),
                    },
                )
            },
        ),
    },
)


def sign(payload: bytes, at: int = NOW, secret: str = SECRET) -> str:
    return f"t={at},v1={hmac.new(secret.encode(), f'{at}.'.encode() + payload, hashlib.sha256).hexdigest()}"


@pytest.fixture(scope="module")
def webhook_settings(in_process_aws: Settings) -> Iterator[Settings]:
    with bootstrap.override(settings=dataclasses.replace(in_process_aws, stripe_webhook_secret=SECRET)):
        yield in_process_aws


@pytest.mark.parametrize(
    "header",
    [
        "t=\u00b2,v1=" + "0" * 64,  # a digit to str.isdigit(), not to int()
        "t=\u0661\u0662,v1=" + "0" * 64,  # Arabic-Indic digits
        f"t={NOW},v1=" + "\u00e9" * 64,  # non-ASCII: hmac.compare_digest raises TypeError on it
        f"t={NOW},v1=" + "0" * 63,
        f"t={'9' * 400},v1=" + "0" * 64,
        "t=,v1=",
        "",
        None,
    ],
)
def test_a_malformed_signature_header_is_invalid_signature(header: str | None) -> None:
    with pytest.raises(InvalidSignatureError):
        payments.verify_stripe_signature(b"{}", header, SECRET, at_s=NOW)


@settings(max_examples=300, deadline=None)
@given(
    header=st.text(max_size=120) | st.builds(lambda t, v: f"t={t},v1={v}", st.text(max_size=12), st.text(max_size=70))
)
def test_any_signature_header_verifies_or_is_refused_as_invalid_signature(header: str) -> None:
    try:
        payments.verify_stripe_signature(b"{}", header, SECRET, at_s=NOW)
    except InvalidSignatureError as refused:
        assert status_of(refused) == 400
    else:
        raise AssertionError(f"an unsigned header verified: {header!r}")


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(max_size=200), skew=st.integers(-300, 300))
def test_a_correct_signature_within_the_tolerance_verifies(payload: bytes, skew: int) -> None:
    payments.verify_stripe_signature(payload, sign(payload, NOW + skew), SECRET, at_s=NOW)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "payment_intent.succeeded", "data": []},
        {"type": "payment_intent.succeeded", "data": {"object": "pi_1"}},
        {"type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "metadata": ["o"]}}},
        {"type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "metadata": {"order_id": {}}}}},
        {"type": "payment_intent.succeeded", "data": {"object": {"id": 7, "metadata": {"order_id": "o1"}}}},
        {"type": ["payment_intent.succeeded"]},
        [],
        "text",
    ],
)
def test_a_body_of_the_wrong_shape_is_invalid_request(body: Any) -> None:
    with pytest.raises(InvalidRequestError):
        payments.parse_webhook_event(json.dumps(body).encode())


@settings(max_examples=300, deadline=None)
@given(body=stripe_like | json_values)
def test_any_json_body_parses_or_is_refused_as_invalid_request(body: Any) -> None:
    try:
        event = payments.parse_webhook_event(json.dumps(body).encode())
    except InvalidRequestError as refused:
        assert status_of(refused) == 400
    else:
        assert isinstance(body, dict) and event.kind == body["type"]
        if event.order_id is not None:
            assert event.kind in payments.WEBHOOK_VERDICTS
            assert event.order_id == body["data"]["object"]["metadata"]["order_id"]
            assert isinstance(event.intent_id, str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=stripe_like, raw=st.binary(max_size=40))
def test_the_webhook_answers_any_signed_body_without_a_server_error(
    webhook_settings: Settings, body: Any, raw: bytes
) -> None:
    """The whole handler, signature and settlement included, against the unit tier's in-process moto."""
    for payload in (json.dumps(body).encode(), raw):
        try:
            assert payments.handle_webhook(payload, sign(payload, payments_now())) == {"received": True}
        except (InvalidRequestError, InvalidSignatureError) as refused:
            assert status_of(refused) == 400


def payments_now() -> int:
    return int(payments.time.time())
