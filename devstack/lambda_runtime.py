"""What Lambda gives a handler, for handlers the dev stack invokes in-process."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from chalice import Chalice

from devstack.identity import function_arn


class LambdaContext:
    """The context object Lambda passes to a Python handler (the attributes Powertools and Chalice read)."""

    def __init__(
        self,
        function_name: str,
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 60.0,
        aws_request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn(function_name)
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation would time out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _PerThread:
    """A data descriptor that keeps one value per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return getattr(self._local, "value", None)

    def __set__(self, obj: Any, value: Any) -> None:
        self._local.value = value


class ConcurrentChalice(Chalice):
    """Chalice keeps the current request on the app object, which is safe in Lambda (one event per
    container at a time) but not in the dev stack, which serves many requests at once in one
    process: here that state is kept per thread."""

    current_request = _PerThread()
    lambda_context = _PerThread()


def serve_concurrently(app: Chalice) -> Chalice:
    """Make `app` safe to call from many threads at once (see ConcurrentChalice)."""
    if not isinstance(app, ConcurrentChalice):
        app.__dict__.pop("current_request", None)
        app.__dict__.pop("lambda_context", None)
        # A subclass of the app's own class, so what that class adds (its settings-driven debug flag) stays.
        app.__class__ = type(f"Concurrent{type(app).__name__}", (ConcurrentChalice, type(app)), {})
    return app
