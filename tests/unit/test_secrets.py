"""Stripe's keys: read at run time from Secrets Manager, cached, and only by the functions granted them."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.schema import secrets, topology
from chalicelib.schema.functions import ACCESS
from devstack.iam import LocalArns
from devstack.iam_requests import Request, allows
from infra.policy import function_statements


@pytest.fixture()
def stripe_stage():
    """Settings of a stage that pays through Stripe, with its secret in the embedded Secrets Manager."""
    name = f"livedrop/test/stripe-{uuid.uuid4().hex[:8]}"
    client = aws.client("secretsmanager")
    arn = client.create_secret(Name=name, SecretString=json.dumps({"api_key": "sk_test_1", "webhook_secret": "w1"}))[
        "ARN"
    ]
    settings = dataclasses.replace(
        get_settings(), payment_provider="stripe", stripe_api_key="", stripe_webhook_secret="", stripe_secret_name=name
    )
    secrets.reset()
    yield settings, arn
    secrets.reset()
    client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_stripe_keys_are_read_from_the_secret_and_cached(stripe_stage) -> None:
    settings, _ = stripe_stage
    assert secrets.stripe_value(settings, "api_key") == "sk_test_1"
    assert secrets.stripe_value(settings, "webhook_secret") == "w1"
    aws.client("secretsmanager").put_secret_value(
        SecretId=settings.stripe_secret_name, SecretString=json.dumps({"api_key": "sk_test_2", "webhook_secret": "w2"})
    )
    # Within the cache's age the function keeps the value it read: one Secrets Manager call per five minutes.
    assert secrets.stripe_value(settings, "api_key") == "sk_test_1"
    secrets.reset()
    assert secrets.stripe_value(settings, "api_key") == "sk_test_2"


def test_only_the_functions_that_charge_may_read_the_secret(stripe_stage) -> None:
    settings, arn = stripe_stage
    streams = {s.table: f"arn:aws:dynamodb:us-east-1:1:table/{s.table}/stream/1" for s in topology.STREAM_SOURCES}
    arns = LocalArns(settings, streams, "api1", "api")
    read = Request("secretsmanager:GetSecretValue", arn)
    readers = {
        name
        for name, access in ACCESS.items()
        if allows(function_statements(name, access, arns, payment_secrets=True), read)
    }
    assert readers == {name for name, access in ACCESS.items() if access.payment_secrets} == {"api", "payments"}


def test_a_rotated_key_reaches_the_warm_payment_gateway_once_the_cache_ages(stripe_stage, monkeypatch) -> None:
    from chalicelib.delivery import payments
    from chalicelib.wiring import bootstrap

    settings, _ = stripe_stage
    sent: list[str] = []

    class Reply:
        status = 200

        def __enter__(self) -> Reply:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self) -> bytes:
            return b'{"id": "pi_1", "status": "succeeded"}'

    def fake_urlopen(request, timeout):
        sent.append(request.get_header("Authorization"))
        return Reply()

    monkeypatch.setattr(payments.urllib.request, "urlopen", fake_urlopen)
    with bootstrap.override(settings=settings):
        gateway = bootstrap.payment_gateway()
        gateway.charge("or_1", 100, "USD", "pm_card_visa", "or_1")
        aws.client("secretsmanager").put_secret_value(
            SecretId=settings.stripe_secret_name,
            SecretString=json.dumps({"api_key": "sk_test_2", "webhook_secret": "w2"}),
        )
        gateway.charge("or_2", 100, "USD", "pm_card_visa", "or_2")
        # Five minutes later (the cache's clock moved on), the same warm gateway charges with the new key.
        later = secrets._now() + secrets.SECRET_MAX_AGE_SECONDS + 1
        monkeypatch.setattr(secrets, "_now", lambda: later)
        gateway.charge("or_3", 100, "USD", "pm_card_visa", "or_3")
    assert sent == ["Bearer sk_test_1", "Bearer sk_test_1", "Bearer sk_test_2"]
