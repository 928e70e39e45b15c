"""Secrets read at run time from Secrets Manager and cached, never kept in the environment."""

from __future__ import annotations

import threading
from typing import Any

from chalicelib import aws
from chalicelib.config import Settings

# Long enough to spare Secrets Manager a call per invocation, short enough to pick up a rotation.
SECRET_MAX_AGE_SECONDS = 300
_provider: Any = None
_provider_lock = threading.Lock()


def _secrets() -> Any:
    global _provider
    if _provider is None:
        with _provider_lock:
            if _provider is None:
                from aws_lambda_powertools.utilities.parameters import SecretsProvider

                _provider = SecretsProvider(boto3_client=aws.client("secretsmanager"))
    return _provider


def stripe_value(settings: Settings, field: str) -> str:
    """Stripe's `api_key` or `webhook_secret`: a value set in the environment (local runs) wins, else,
    on a stage that pays through Stripe, the field of the stage's Stripe secret in Secrets Manager."""
    local = {"api_key": settings.stripe_api_key, "webhook_secret": settings.stripe_webhook_secret}[field]
    if local or settings.payment_provider != "stripe":
        return local
    secret = _secrets().get(settings.stripe_secret_name, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
    value = secret.get(field) if isinstance(secret, dict) else None
    if not isinstance(value, str) or not value:
        raise RuntimeError(f"secret {settings.stripe_secret_name} has no {field}")
    return value


def reset() -> None:
    """Forget the cached provider and values (tests that change endpoints call this)."""
    global _provider
    with _provider_lock:
        _provider = None
