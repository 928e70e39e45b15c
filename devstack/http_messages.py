"""HTTP/1.1 messages of the dev stack's front door (devstack.http11): a parsed request, a response, the
API's error shape, and the encoding of a response as one buffer."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus


@dataclass
class Request:
    """One parsed request: the target as sent (path and query), headers in their order and case."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes | None
    keep_alive: bool
    peer: tuple[str, int] | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        """The last value of header `name`, regardless of case."""
        lowered = name.lower()
        for key, value in reversed(self.headers):
            if key.lower() == lowered:
                return value
        return default


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    close: bool = False


UNAVAILABLE = Response(
    503, {"Content-Type": "application/json", "Retry-After": "1"}, b'{"message": "Service Unavailable"}'
)


def error_response(status: int, code: str, message: str, **headers: str) -> Response:
    """A response in the API's error shape."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return Response(status, {"Content-Type": "application/json", **headers}, body)


class _Clock:
    """The Date header, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._value = second, formatdate(second, usegmt=True)
        return self._value


_CLOCK = _Clock()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def encode_response(response: Response, head: bool, keep_alive: bool) -> bytes:
    """Status line, headers and body as one buffer (one write: no Nagle delay between them)."""
    lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}", f"Date: {_CLOCK.now()}"]
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "connection", "transfer-encoding", "date"):
            lines.append(f"{name}: {value}")
    if response.status != 204 and not 100 <= response.status < 200 and response.status != 304:
        lines.append(f"Content-Length: {len(response.body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    if head or response.status in (204, 304):
        return head_bytes
    return head_bytes + response.body
