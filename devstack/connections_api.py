"""API Gateway's `@connections` management API for the dev WebSocket gateway's connections.

`POST|GET|DELETE /@connections/{id}` (also under `/{stage}/`), 410 GoneException for unknown or closed
ids, 413 above 128 KB. It is served on the gateway's own event loop (devstack.ws_gateway), the loop
that owns the sockets, so a push is written by the loop that reads the same socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.exceptions import ConnectionClosed

from devstack import faults
from devstack.http11 import Request, Response
from devstack.ws_connections import ConnectionRegistry, now_ms

logger = logging.getLogger("devstack.ws_gateway")

MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message and PostToConnection payload limit
_CONNECTIONS_PATH = re.compile(r"^(?:/[^/]+)?/@connections/([^/]+)/?$")


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


class ConnectionsApi:
    """Answers `@connections` requests about the connections in `registry`."""

    def __init__(self, registry: ConnectionRegistry, *, send_timeout: float = 2.0) -> None:
        self._registry = registry
        self._send_timeout = send_timeout

    async def handle(self, request: Request) -> Response:
        """The management API's answer to `request` (a devstack.http11 request handler)."""
        match = _CONNECTIONS_PATH.match(urlsplit(request.target).path)
        if match is None:
            return _reply(404, {"message": "Not Found"}, "NotFoundException")
        connection_id = unquote(match.group(1))
        if request.method == "POST":
            data = request.body or b""
            if len(data) > MAX_MESSAGE_BYTES:
                return _reply(413, {"message": "Request entity too large"}, "PayloadTooLargeException")
            # A lost post (fault injection, devstack.faults) is acknowledged and never delivered.
            if faults.drops_post() or await self.post(connection_id, data) == 200:
                return _reply(200)
        elif request.method == "GET":
            description = self.describe(connection_id)
            if description is not None:
                return _reply(200, description)
        elif request.method == "DELETE":
            if self.delete(connection_id) == 204:
                return _reply(204)
        else:
            return _reply(404, {"message": "Not Found"}, "NotFoundException")
        return _reply(410, {"message": "The connection is gone"}, "GoneException")

    async def post(self, connection_id: str, data: bytes) -> int:
        """Send `data` to the connection (a text frame when it is UTF-8); 200, or 410 when it is gone."""
        conn = self._registry.lookup(connection_id)
        if conn is None or conn.ws is None:
            return 410
        try:
            message: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            message = data
        try:
            await asyncio.wait_for(conn.ws.send(message), self._send_timeout)
        except TimeoutError:
            # The client has left 1 MiB unread for send_timeout: treat it as gone rather than hold this
            # request (and the caller's fan-out) hostage to it.
            logger.warning("connection %s is not reading; dropping it", connection_id)
            conn.close_cause = conn.close_cause or (1006, "Connection closed abnormally")
            conn.ws.transport.abort()
            return 410
        except ConnectionClosed:
            return 410
        conn.last_active = now_ms()
        return 200

    def delete(self, connection_id: str) -> int:
        """Close the connection; 204, or 410 when it is gone."""
        conn = self._registry.lookup(connection_id)
        if conn is None or conn.ws is None:
            return 410
        conn.close_cause = (1000, "Connection deleted through the @connections API")
        self._registry.remove(conn)
        # Like API Gateway, answer 204 without waiting for the closing handshake.
        asyncio.ensure_future(conn.ws.close(1000, ""))
        return 204

    def describe(self, connection_id: str) -> dict[str, Any] | None:
        """GetConnection's body, or None when the connection is gone."""
        conn = self._registry.lookup(connection_id)
        if conn is None:
            return None
        return {
            "connectedAt": _iso(conn.connected_at),
            "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            "lastActiveAt": _iso(conn.last_active),
        }


def _reply(status: int, body: dict[str, Any] | None = None, error_type: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    if status == 204:
        return Response(204, headers)
    headers["Content-Type"] = "application/json"
    return Response(status, headers, json.dumps(body).encode() if body is not None else b"")
