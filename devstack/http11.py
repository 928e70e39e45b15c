"""A small HTTP/1.1 server on asyncio: the front door of the dev stack's gateways.

One event loop serves every connection, so sockets cost no threads; the request itself is handed to an
async callable (which hands it to a function's environments). Like a hardened front door it:
- keeps connections alive (HTTP/1.1 by default, HTTP/1.0 with `Connection: keep-alive`) and answers
  pipelined requests one at a time, in order;
- bounds what a client can make it hold: the header block (size and count), the body (Content-Length
  only, digits only, at most `max_body`), and how long each part may take to arrive (`read_timeout`
  from the first byte of a request to its last) and how long an idle keep-alive connection stays open;
- bounds what all clients together can make it hold: the bytes buffered for requests not yet handled
  (`max_buffered_bytes`, over all connections) and the connections open from one client address
  (`max_connections_per_client`); past either, the connection that would exceed it is answered 503
  (API Gateway's `{"message": "Service Unavailable"}`) and closed;
- answers broken framing with a 4xx in the API's error shape `{"error": {"code", "message"}}` and closes
  the connection, since after bad framing the next request cannot be found reliably.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from devstack.http_messages import UNAVAILABLE, Request, Response, encode_response, error_response

logger = logging.getLogger(__name__)

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_TARGET = re.compile(rb"^[\x21-\x7e\x80-\xff]+$")
_DIGITS = re.compile(rb"^[0-9]{1,19}$")


@dataclass(frozen=True)
class Limits:
    """What one connection may make the server hold or wait for."""

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_body: int = 10 * 1024 * 1024  # API Gateway's payload limit
    # From a request's first byte to its last (headers and body); a slower client is answered and closed.
    read_timeout: float = 30.0
    # An idle keep-alive connection is closed after this long without a new request.
    keep_alive_timeout: float = 60.0
    # The body of the 413 for a body over max_body.
    too_large: bytes = b'{"message": "Request Too Long"}'
    # Over every connection: bytes received for requests not handled yet (unfinished bodies, pipelined
    # requests). A few full-size bodies fit; forty nearly finished 10 MB bodies do not.
    max_buffered_bytes: int = 64 * 1024 * 1024
    # Connections open at once from one client address (tests and benches open a few dozen).
    max_connections_per_client: int = 256


class _Refuse(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = error_response(status, code, message)


Handle = Callable[[Request], Awaitable[Response]]


class _Connection(asyncio.Protocol):
    """One client connection: buffers bytes, parses one request at a time, hands it on, writes the answer."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._limits = server.limits
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._busy = False  # a request is being handled; pipelined bytes wait in the buffer
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._request_started: float | None = None  # loop time of the current request's first byte
        self._writable = asyncio.Event()
        self._writable.set()
        self._peer: tuple[str, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._eof = False
        self._continued = False  # "100 Continue" already sent for the current request
        self._counted = 0  # this connection's share of the server's buffered bytes
        self._client: str | None = None  # the address counted against max_connections_per_client

    # --- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        # asyncio already sets TCP_NODELAY on TCP transports, and each answer is one write anyway.
        peer = transport.get_extra_info("peername")
        self._peer = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        client = self._peer[0] if self._peer else ""
        if self._server.clients.get(client, 0) >= self._limits.max_connections_per_client:
            self._fail(UNAVAILABLE)
            return
        self._client = client
        self._server.clients[client] = self._server.clients.get(client, 0) + 1
        self._server.connections.add(self)
        self._arm(self._limits.keep_alive_timeout, self._idle_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.connections.discard(self)
        self._disarm()
        self._buffer.clear()
        self._account()
        if self._client is not None:
            left = self._server.clients.pop(self._client, 1) - 1
            if left:
                self._server.clients[self._client] = left
            self._client = None
        # A request being handled runs to its end, as API Gateway completes an integration whose
        # client has gone; its answer is dropped (see _handle).
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._request_started is None and data:
            self._request_started = asyncio.get_running_loop().time()
            self._arm(self._limits.read_timeout, self._read_expired)
        self._buffer += data
        self._account()
        if self._server.buffered > self._limits.max_buffered_bytes:
            if not self._busy:
                self._fail(UNAVAILABLE)  # the request that would take the server past its total
                return
            assert self._transport is not None
            self._transport.pause_reading()  # pipelined bytes wait in the kernel instead
        if len(self._buffer) > self._limits.max_header_bytes + self._limits.max_body + 65536:
            # A client pipelining far ahead of the answers: stop reading until it catches up.
            assert self._transport is not None
            self._transport.pause_reading()
        if not self._busy:
            self._advance()

    def eof_received(self) -> bool | None:
        # A half-closed client still gets the answer to a request it finished sending.
        self._eof = True
        if not self._busy:
            self._close()
        return True

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # --- timers ------------------------------------------------------------------------------
    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle_expired(self) -> None:
        if not self._busy and self._request_started is None:
            self._close()

    def _read_expired(self) -> None:
        if self._busy or self._closing:
            return
        if b"\r\n\r\n" in self._buffer:
            self._fail(error_response(400, "invalid_request", "the request body did not arrive in time"))
        else:
            self._fail(error_response(408, "request_timeout", "the request headers did not arrive in time"))

    # --- parsing -------------------------------------------------------------------------------
    def _advance(self) -> None:
        """Parse and dispatch the next complete request in the buffer, if there is one."""
        if self._closing or self._busy:
            return
        try:
            parsed = self._parse()
        except _Refuse as refused:
            self._fail(refused.response)
            return
        finally:
            self._account()
        if parsed is None:
            if self._transport is not None and self._transport.is_reading() is False:
                self._transport.resume_reading()
            return
        self._disarm()
        self._busy = True
        self._task = asyncio.ensure_future(self._handle(parsed))

    def _parse(self) -> Request | None:
        buffer = self._buffer
        # Tolerate the empty lines some clients send between requests (RFC 9112 2.2).
        while buffer[:2] == b"\r\n":
            del buffer[:2]
        if not buffer:
            self._request_started = None
            self._arm(self._limits.keep_alive_timeout, self._idle_expired)
            return None
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > self._limits.max_header_bytes:
                raise _Refuse(431, "request_header_too_large", "the request headers are too large")
            line_end = buffer.find(b"\r\n")
            if line_end >= 0:
                self._request_line(bytes(buffer[:line_end]))  # refuse a bad request line at once
            elif len(buffer) > 8192:
                raise _Refuse(414, "uri_too_long", "the request line is too long")
            return None
        if end > self._limits.max_header_bytes:
            raise _Refuse(431, "request_header_too_large", "the request headers are too large")
        lines = bytes(buffer[:end]).split(b"\r\n")
        method, target, version = self._request_line(lines[0])
        if len(lines) - 1 > self._limits.max_headers:
            raise _Refuse(431, "request_header_too_large", f"more than {self._limits.max_headers} headers")
        headers: list[tuple[str, str]] = []
        lengths: set[bytes] = set()
        connection = b""
        expect_continue = False
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.match(name):
                raise _Refuse(400, "invalid_request", "malformed header line")
            value = value.strip(b" \t")
            lowered = name.lower()
            if lowered == b"content-length":
                lengths.add(value)
            elif lowered == b"transfer-encoding":
                raise _Refuse(411, "length_required", "chunked bodies are not accepted; send Content-Length")
            elif lowered == b"connection":
                connection = value.lower()
            elif lowered == b"expect":
                expect_continue = value.lower() == b"100-continue"
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        if len(lengths) > 1:
            raise _Refuse(400, "invalid_request", "conflicting Content-Length headers")
        length = 0
        if lengths:
            raw = lengths.pop()
            if not _DIGITS.match(raw):
                raise _Refuse(400, "invalid_request", "Content-Length must be a non-negative integer")
            length = int(raw)
        if length > self._limits.max_body:
            refused = Response(413, {"Content-Type": "application/json"}, self._limits.too_large)
            raise _RefuseWith(refused)
        total = end + 4 + length
        if len(buffer) < total:
            if expect_continue and not self._continued and self._transport is not None:
                self._continued = True
                self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        body = bytes(buffer[end + 4 : total]) if length else None
        del buffer[:total]
        self._continued = False
        # HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told to keep it.
        keep_alive = b"close" not in connection if version == "HTTP/1.1" else b"keep-alive" in connection
        return Request(method, target, version, headers, body, keep_alive, self._peer)

    @staticmethod
    def _request_line(line: bytes) -> tuple[str, str, str]:
        parts = line.split(b" ")
        if len(parts) != 3 or not _TOKEN.match(parts[0]) or not _TARGET.match(parts[1]):
            raise _Refuse(400, "invalid_request", "malformed request line")
        if parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            # 400 rather than 505: nothing a client sends is answered with a 5xx.
            raise _Refuse(400, "invalid_request", "only HTTP/1.0 and HTTP/1.1 are served")
        return parts[0].decode("ascii"), parts[1].decode("latin-1"), parts[2].decode("ascii")

    # --- answering ---------------------------------------------------------------------------
    async def _handle(self, request: Request) -> None:
        try:
            response = await self._server.handle(request)
        except asyncio.CancelledError:
            return
        except Exception:
            logger.exception("gateway handler failed on %s %s", request.method, request.target)
            response = Response(502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}')
        if self._closing or self._transport is None:
            return
        keep_alive = request.keep_alive and not response.close and not self._server.stopping
        keep_alive = keep_alive and not (self._eof and b"\r\n\r\n" not in self._buffer)
        self._transport.write(encode_response(response, request.method == "HEAD", keep_alive))
        if not keep_alive:
            self._close()
            return
        await self._writable.wait()  # a client that does not read its answers gets no further ones
        self._busy = False
        self._request_started = None
        if self._buffer:
            self._request_started = asyncio.get_running_loop().time()
            self._arm(self._limits.read_timeout, self._read_expired)
        self._advance()
        if not self._busy and not self._buffer:
            self._request_started = None
            self._arm(self._limits.keep_alive_timeout, self._idle_expired)

    def _fail(self, response: Response) -> None:
        if self._transport is not None and not self._closing:
            self._transport.write(encode_response(response, False, False))
        self._close()

    def _account(self) -> None:
        """Bring the server's total of buffered bytes up to date with this connection's buffer."""
        self._server.buffered += len(self._buffer) - self._counted
        self._counted = len(self._buffer)

    def _close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._disarm()
        self._buffer.clear()
        self._account()
        if self._transport is not None:
            self._transport.close()

    def close_if_idle(self) -> None:
        """Close now unless a request is being answered (used when the server stops)."""
        if not self._busy:
            self._close()


class _RefuseWith(_Refuse):
    def __init__(self, response: Response) -> None:
        Exception.__init__(self, response.status)
        self.response = response


class HttpServer:
    """Accepts connections on a bound socket and serves them with `handle`, on the running event loop."""

    def __init__(self, handle: Handle, sock: socket.socket, limits: Limits | None = None) -> None:
        self.handle = handle
        self.limits = limits or Limits()
        self.connections: set[_Connection] = set()
        # Bytes buffered over all connections, and open connections per client address (Limits).
        self.buffered = 0
        self.clients: dict[str, int] = {}
        self.stopping = False
        self._sock = sock
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=self._sock, backlog=1024)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, close idle connections, let answers in flight finish (up to `grace`), close the rest."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close_if_idle()
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            connection._close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one), ready for HttpServer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
