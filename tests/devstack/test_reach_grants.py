"""The grants of e-mail and Web Push, enforced by the dev stack as IAM would: only `deliver` sends
e-mail, only `deliver` and the API touch the VAPID key's secret, and SES authorizes the sender's
identity and the configuration set."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.delivery import mailer, webpush
from chalicelib.schema.messages import Envelope
from devstack import iam
from devstack.iam_requests import CallSite, requests_for
from devstack.identity import ACCOUNT_ID, REGION


def an_email() -> mailer.Email:
    event = Envelope.new(str(uuid.uuid4()), "order_confirmed", 1_800_000_000_000, {"order_id": "or_1"})
    return mailer.compose(event, "u_grants", "grants@example.com")


def test_sending_raw_email_asks_for_the_senders_domain_and_the_configuration_set() -> None:
    site = CallSite("ses", REGION, ACCOUNT_ID, "api1", "api")
    params = {"Source": "LiveDrop <no-reply@mail.example.org>", "ConfigurationSetName": "livedrop-dev"}
    asked = [(r.action, r.resource) for r in requests_for(site, "SendRawEmail", params)]
    assert asked == [
        ("ses:SendRawEmail", f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/mail.example.org"),
        ("ses:SendRawEmail", f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:configuration-set/livedrop-dev"),
    ]


def test_only_deliver_may_send_email(stack) -> None:
    email = an_email()
    with iam.acting_as("deliver"):
        assert mailer.send(email)
    for function in ("api", "fanout", "payments"):
        with stack.iam.expecting_denials(), iam.acting_as(function), pytest.raises(ClientError) as denied:
            mailer.send(email)
        assert denied.value.response["Error"]["Code"] == "AccessDenied", function
        assert "ses:SendRawEmail" in denied.value.response["Error"]["Message"]


def test_deliver_without_its_ses_grant_is_refused(stack) -> None:
    identity = f":identity/{get_settings().email_domain}"
    revoked = stack.iam.revoked("deliver", "ses:SendRawEmail", identity)
    with iam.acting_as("deliver"), revoked, pytest.raises(ClientError) as denied:
        mailer.send(an_email())
    assert f"on resource: arn:aws:ses:{REGION}:{ACCOUNT_ID}{identity}" in denied.value.response["Error"]["Message"]


def test_the_vapid_secret_is_the_api_and_delivers_alone(stack) -> None:
    for function in ("api", "deliver"):
        with iam.acting_as(function):
            assert webpush.public_key()
    name = get_settings().vapid_secret_name
    with stack.iam.expecting_denials(), iam.acting_as("fanout"), pytest.raises(ClientError) as denied:
        aws.client("secretsmanager").get_secret_value(SecretId=name)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with stack.iam.expecting_denials(), iam.acting_as("api"), pytest.raises(ClientError) as other:
        aws.client("secretsmanager").get_secret_value(SecretId=f"livedrop/{uuid.uuid4().hex}/other")
    assert other.value.response["Error"]["Code"] == "AccessDeniedException"
