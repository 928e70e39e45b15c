"""boto3 clients built lazily, once per process, pointed at Settings' endpoint for their service (the composition
root, chalicelib.wiring.bootstrap, forgets them when the settings change)."""

from __future__ import annotations

import threading
from typing import Any

from botocore.config import Config

from chalicelib.core.config import Settings, get_settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}
# A health probe's calls: one attempt, answered within about PROBE_SECONDS or not at all.
PROBE_SECONDS = 1.0


def client_config(settings: Settings, probe: bool = False) -> Config:
    """Timeouts and retries of the app's AWS calls (the settings'), or a health probe's shorter ones."""
    if probe:
        return Config(connect_timeout=PROBE_SECONDS / 2, read_timeout=PROBE_SECONDS, retries={"total_max_attempts": 1})
    return Config(
        connect_timeout=settings.aws_connect_timeout_seconds,
        read_timeout=settings.aws_read_timeout_seconds,
        retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
        max_pool_connections=64,
    )


def client(service: str, endpoint_url: str | None = None, probe: bool = False) -> Any:
    """A shared boto3 client for `service` (optionally at another endpoint; `probe`: with the health
    probe's short timeout and no retry)."""
    settings = get_settings()
    endpoint = endpoint_url or settings.endpoint_url(service)
    key = f"{service}@{endpoint}{'#probe' if probe else ''}"
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            import boto3  # here, not at import: a cold start that needs no client does not pay for boto3

            _clients[key] = boto3.session.Session().client(
                service, region_name=settings.region, endpoint_url=endpoint, config=client_config(settings, probe)
            )
        return _clients[key]


def reset_clients() -> None:
    """Forget every client (the composition root does, when the settings change)."""
    with _lock:
        _clients.clear()
