"""boto3 clients built lazily, once per process, pointed at Settings' endpoint for their service (the composition
root, chalicelib.bootstrap, forgets them when the settings change)."""

from __future__ import annotations

import threading
from typing import Any

from botocore.config import Config

from chalicelib.config import get_settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=64)


def client(service: str, endpoint_url: str | None = None) -> Any:
    """A shared boto3 client for `service` (optionally at another endpoint)."""
    settings = get_settings()
    endpoint = endpoint_url or settings.endpoint_url(service)
    key = f"{service}@{endpoint}"
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            import boto3  # here, not at import: a cold start that needs no client does not pay for boto3

            _clients[key] = boto3.session.Session().client(
                service, region_name=settings.region, endpoint_url=endpoint, config=_CLIENT_CONFIG
            )
        return _clients[key]


def reset_clients() -> None:
    """Forget every client (the composition root does, when the settings change)."""
    with _lock:
        _clients.clear()
