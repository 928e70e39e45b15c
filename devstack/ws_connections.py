"""The WebSocket gateway's open connections: what both its socket side and its `@connections` API see."""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

# The close the gateway itself sends (idle, maximum duration, stop).
GOING_AWAY = (1001, "Going away")


def now_ms() -> int:
    """Epoch milliseconds, the unit API Gateway's connectedAt and requestTimeEpoch are in."""
    return int(time.time() * 1000)


def aws_id() -> str:
    """An id shaped like API Gateway's connection/request/message ids (16 chars of url-safe base64)."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


@dataclass(eq=False)
class Connection:
    connection_id: str
    source_ip: str
    user_agent: str
    connected_at: int
    last_active: int
    response_headers: dict[str, str] = field(default_factory=dict)
    ws: ServerConnection | None = None
    # (code, reason) when the gateway itself closes the socket (DELETE, idle, max duration, stop).
    close_cause: tuple[int, str] | None = None


class ConnectionRegistry:
    """Connection ids in use: open connections, and ids handed out to handshakes still in `$connect`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Connection] = {}
        self._reserved: set[str] = set()

    def reserve_id(self) -> str:
        """A connection id no open connection or pending handshake has."""
        with self._lock:
            connection_id = aws_id()
            while connection_id in self._open or connection_id in self._reserved:
                connection_id = aws_id()
            self._reserved.add(connection_id)
        return connection_id

    def release_id(self, connection_id: str) -> None:
        """Give back the id of a handshake that was refused."""
        with self._lock:
            self._reserved.discard(connection_id)

    def add(self, conn: Connection, *, closing: bool) -> None:
        """Register an accepted connection; `closing` (the gateway is stopping) marks it going away at once."""
        with self._lock:
            self._reserved.discard(conn.connection_id)
            self._open[conn.connection_id] = conn
            if closing:
                conn.close_cause = conn.close_cause or GOING_AWAY

    def remove(self, conn: Connection) -> None:
        """Forget `conn` (not a later connection that reused its id)."""
        with self._lock:
            if self._open.get(conn.connection_id) is conn:
                del self._open[conn.connection_id]

    def lookup(self, connection_id: str) -> Connection | None:
        """The open connection `connection_id`, or None when it is unknown, closing or closed."""
        with self._lock:
            conn = self._open.get(connection_id)
        if conn is None or conn.close_cause is not None or conn.ws is None:
            return None
        return conn

    def close_all(self) -> None:
        """Mark every open connection as closed by the gateway going away."""
        with self._lock:
            for conn in self._open.values():
                conn.close_cause = conn.close_cause or GOING_AWAY

    def expire(self, idle_timeout: float, max_duration: float) -> list[Connection]:
        """Mark and return the connections idle longer than `idle_timeout` or open longer than `max_duration`
        seconds (API Gateway's two connection limits)."""
        now = now_ms()
        expired = []
        with self._lock:
            for conn in self._open.values():
                idle = now - conn.last_active > idle_timeout * 1000
                too_old = now - conn.connected_at > max_duration * 1000
                if (idle or too_old) and conn.close_cause is None:
                    conn.close_cause = GOING_AWAY
                    expired.append(conn)
        return expired
