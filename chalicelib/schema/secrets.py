"""Secrets read at run time from Secrets Manager and cached with a TTL, never kept in the environment."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from chalicelib.core import aws, cache
from chalicelib.core.config import Settings

# Long enough to spare Secrets Manager a call per invocation, short enough to pick up a rotation:
# a warm function reads a rotated key within this many seconds.
SECRET_MAX_AGE_SECONDS = 300
_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()
_now = time.monotonic


def _secret(name: str) -> dict[str, Any]:
    """The secret's JSON, from the cache while it is younger than SECRET_MAX_AGE_SECONDS."""
    with _lock:
        cached = _cache.get(name)
        if cached is not None and _now() < cached[0]:
            return cached[1]
    # Read outside the lock: two threads may both read once at expiry, which is harmless.
    raw = aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise RuntimeError(f"secret {name} is not a JSON object")
    with _lock:
        _cache[name] = (_now() + SECRET_MAX_AGE_SECONDS, value)
    return value


def stripe_value(settings: Settings, field: str) -> str:
    """Stripe's `api_key` or `webhook_secret`: a value set in the environment (local runs) wins, else,
    on a stage that pays through Stripe, the field of the stage's Stripe secret in Secrets Manager."""
    local = {"api_key": settings.stripe_api_key, "webhook_secret": settings.stripe_webhook_secret}[field]
    if local or settings.payment_provider != "stripe":
        return local
    value = _secret(settings.stripe_secret_name).get(field)
    if not isinstance(value, str) or not value:
        raise RuntimeError(f"secret {settings.stripe_secret_name} has no {field}")
    return value


@cache.remember
def reset() -> None:
    """Forget the cached values (the composition root calls this when the settings change)."""
    with _lock:
        _cache.clear()
