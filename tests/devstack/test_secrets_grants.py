"""Stripe's keys are read only by the functions granted them: a stage without Stripe never asks."""

from __future__ import annotations

import dataclasses

from chalicelib.core.config import get_settings
from chalicelib.schema import secrets
from devstack import iam


def test_a_stage_without_stripe_never_asks_secrets_manager(stack) -> None:
    settings = dataclasses.replace(get_settings(), payment_provider="fake", stripe_api_key="", stripe_webhook_secret="")
    # fanout holds no Secrets Manager grant: a call would be refused.
    with iam.acting_as("fanout"):
        assert secrets.stripe_value(settings, "webhook_secret") == ""
