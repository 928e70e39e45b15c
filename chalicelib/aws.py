"""boto3 clients built lazily, once per process, pointed at Settings' endpoint for their service (the composition
root, chalicelib.bootstrap, forgets them when the settings change)."""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from chalicelib.config import Settings, get_settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}
# A health probe's calls: one attempt, answered within about PROBE_SECONDS or not at all.
PROBE_SECONDS = 1.0
# What an API request keeps of its Lambda's remaining time to answer once AWS did not: its last AWS
# call starts at least this long before the function would time out (API Gateway answers 504 then).
ANSWER_MARGIN_SECONDS = 1.0

# Inside an API request: the time.monotonic() by which its AWS calls must have started (inf: none).
_request_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "livedrop_request_deadline", default=None
)


class RequestDeadlinePassed(ReadTimeoutError):
    """An API request's AWS call was not started: the request's deadline passed (AWS answered too slowly)."""

    fmt = "Not calling {endpoint_url}: the request's deadline passed"


@contextmanager
def request_deadline(context: Any) -> Iterator[None]:
    """Run an API request's block with the API's AWS call profile (the settings' API read timeout, a timed
    out call never retried) and a deadline from the Lambda context's remaining time, if there is one."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = time.monotonic() + remaining() / 1000 - ANSWER_MARGIN_SECONDS if callable(remaining) else math.inf
    token = _request_deadline.set(deadline)
    try:
        yield
    finally:
        _request_deadline.reset(token)


def in_request() -> bool:
    """Whether the calling code serves an API request (its AWS calls use the API's profile)."""
    return _request_deadline.get() is not None


def _refuse_past_deadline(request: Any, **_: Any) -> None:
    # botocore's before-send, before every attempt: no new attempt once the request's deadline passed.
    deadline = _request_deadline.get()
    if deadline is not None and time.monotonic() >= deadline:
        raise RequestDeadlinePassed(endpoint_url=getattr(request, "url", "AWS"))


def _no_retry_of_a_timeout(caught_exception: BaseException | None = None, **_: Any) -> None:
    # botocore's needs-retry: a backend that did not answer within the API's read timeout would keep the
    # caller waiting as long again; the request answers 503 now (the client retries with its key).
    if isinstance(caught_exception, ReadTimeoutError) and in_request():
        raise caught_exception


def fail_fast(botocore_client: Any) -> Any:
    """Make `botocore_client` keep API requests' deadlines (a no-op outside requests); returns it."""
    events = botocore_client.meta.events
    events.register("before-send", _refuse_past_deadline, unique_id="livedrop-request-deadline")
    events.register("needs-retry", _no_retry_of_a_timeout, unique_id="livedrop-no-timeout-retry")
    return botocore_client


def read_timeout(settings: Settings) -> float:
    """The read timeout of the calling code's AWS calls: the API's inside a request, else the settings'."""
    return settings.api_aws_read_timeout_seconds if in_request() else settings.aws_read_timeout_seconds


def client_config(settings: Settings, probe: bool = False) -> Config:
    """Timeouts and retries of the app's AWS calls (the settings', the API's inside a request), or a
    health probe's shorter ones."""
    if probe:
        return Config(connect_timeout=PROBE_SECONDS / 2, read_timeout=PROBE_SECONDS, retries={"total_max_attempts": 1})
    return Config(
        connect_timeout=settings.aws_connect_timeout_seconds,
        read_timeout=read_timeout(settings),
        retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
        max_pool_connections=64,
    )


def client(service: str, endpoint_url: str | None = None, probe: bool = False) -> Any:
    """A shared boto3 client for `service` (optionally at another endpoint; `probe`: with the health
    probe's short timeout and no retry). Inside an API request, the API's client (see request_deadline)."""
    settings = get_settings()
    endpoint = endpoint_url or settings.endpoint_url(service)
    key = f"{service}@{endpoint}{'#probe' if probe else '#api' if in_request() else ''}"
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            import boto3  # here, not at import: a cold start that needs no client does not pay for boto3

            _clients[key] = fail_fast(
                boto3.session.Session().client(
                    service, region_name=settings.region, endpoint_url=endpoint, config=client_config(settings, probe)
                )
            )
        return _clients[key]


def reset_clients() -> None:
    """Forget every client (the composition root does, when the settings change)."""
    with _lock:
        _clients.clear()
