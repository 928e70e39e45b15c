"""A local stand-in for API Gateway's WebSocket API: the socket side plus the `@connections` management API.

Neither `chalice local` nor SAM serves WebSockets, and moto's apigatewaymanagementapi never answers 410 Gone,
so the dev stack runs this instead. Handlers are Lambda-style callables `(event, context) -> dict | None`,
exactly what Chalice's `on_ws_connect` / `on_ws_message` / `on_ws_disconnect` functions are when Lambda calls
them, and the events carry the keys API Gateway sends (see tests/events/apigw-websocket-*.json).

Behaviour copied from API Gateway:
- `$connect` refuses the handshake with the handler's non-2xx `statusCode`, with 500 if it raises (a Lambda
  error), 502 for a malformed status and 504 past the 29 s integration timeout; `$disconnect` then never fires.
- `$default` return values are not echoed (no route responses); a raising handler gets the client API
  Gateway's `{"message": "Internal server error", ...}` frame and the connection stays open.
- `$disconnect` fires once per accepted connection, whoever closes it.
- `POST|GET|DELETE /@connections/{id}` (also under `/{stage}/`), 410 GoneException for unknown or closed ids,
  413 above 128 KB.
- 10 min idle / 2 h maximum connection duration (configurable); only inbound data frames and pushes count as
  activity, so a client that only sends ping frames is still closed when idle.

One asyncio loop serves both the sockets (websockets' server) and the management API (devstack.http11), so a
push is written by the loop that owns the socket and no socket costs a thread. Handlers run in execution
environments (devstack.environments), one pool per route, as API Gateway invokes one function per route: a
storm of `$disconnect`s queues in its own pool and never holds back `$default` messages or pushes. A route
whose pool and queue are full is throttled as API Gateway does: `$connect` is refused with 429 and a
`$default` message gets the `Too Many Requests` frame; `$disconnect` always waits its turn (it must run).
Pools passed in are the caller's; for plain callables the gateway makes pools of `handler_workers`
environments and ends them on `stop()`, which closes every socket and joins every thread it started.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from devstack import faults
from devstack.environments import FunctionPool, Throttled
from devstack.http11 import HttpServer, Limits, bind
from devstack.http11 import Request as HttpRequest
from devstack.http11 import Response as HttpResponse
from devstack.lambda_runtime import LambdaContext

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message and PostToConnection payload limit
INTEGRATION_TIMEOUT = 29.0  # API Gateway's integration timeout
LAMBDA_TIMEOUT = 60.0  # what get_remaining_time_in_millis() counts down from (Chalice's default)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# API Gateway does not forward the hop-by-hop handshake headers to $connect.
_DROPPED_HEADERS = {"connection", "upgrade"}
_CONNECTIONS_PATH = re.compile(r"^(?:/[^/]+)?/@connections/([^/]+)/?$")
_GOING_AWAY = (1001, "Going away")
_ROUTE_NAMES = {"$connect": "connect", "$default": "message", "$disconnect": "disconnect"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _aws_id() -> str:
    """An id shaped like API Gateway's connection/request/message ids (16 chars of url-safe base64)."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


def _request_time(epoch_ms: int) -> str:
    t = time.gmtime(epoch_ms / 1000)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


@dataclass(eq=False)
class _Connection:
    connection_id: str
    source_ip: str
    user_agent: str
    connected_at: int
    last_active: int
    response_headers: dict[str, str] = field(default_factory=dict)
    ws: ServerConnection | None = None
    # (code, reason) when the gateway itself closes the socket (DELETE, idle, max duration, stop).
    close_cause: tuple[int, str] | None = None


class WebSocketGateway:
    """API Gateway's WebSocket API on 127.0.0.1: `$connect`/`$default`/`$disconnect` plus `@connections`."""

    def __init__(
        self,
        handlers: Mapping[str, Handler | FunctionPool],
        host: str = "127.0.0.1",
        port: int = 0,
        management_port: int = 0,
        path: str = "/notifications",
        stage: str = "dev",
        *,
        api_id: str = "devws00001",
        function_prefix: str = "livedrop-dev",
        idle_timeout: float = 600.0,
        max_connection_duration: float = 7200.0,
        handler_workers: int = 8,
        integration_timeout: float = INTEGRATION_TIMEOUT,
        send_timeout: float = 2.0,
    ) -> None:
        unknown = set(handlers) - {"$connect", "$disconnect", "$default"}
        if unknown:
            raise ValueError(f"unknown route keys: {sorted(unknown)}")
        self._handlers = dict(handlers)
        self._host = host
        self._port = port
        self._management_port = management_port
        self._path = path
        self._stage = stage
        self._api_id = api_id
        self._function_prefix = function_prefix
        self._idle_timeout = idle_timeout
        self._max_duration = max_connection_duration
        self._handler_workers = handler_workers
        self._integration_timeout = integration_timeout
        self._send_timeout = send_timeout

        self._lock = threading.Lock()
        self._connections: dict[str, _Connection] = {}
        self._reserved: set[str] = set()  # ids handed out to handshakes still in $connect
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._loop_thread: threading.Thread | None = None
        self._pools: dict[str, FunctionPool] = {}
        self._own_pools: list[FunctionPool] = []
        self._management_sock: socket.socket | None = None
        self._management: HttpServer | None = None
        self._stopping = False
        self._bound_port: int | None = None
        self._management_bound_port = 0

    # -- public interface -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to, e.g. ws://127.0.0.1:PORT/notifications."""
        self._require_started()
        return f"ws://{self._host}:{self._bound_port}{self._path}"

    @property
    def management_endpoint(self) -> str:
        """The `@connections` endpoint to give boto3's apigatewaymanagementapi client as endpoint_url."""
        self._require_started()
        return f"http://{self._host}:{self._management_bound_port}"

    @property
    def pools(self) -> dict[str, FunctionPool]:
        """The execution environments of each route ($connect, $default, $disconnect)."""
        return dict(self._pools)

    def start(self) -> None:
        """Bind both ports and serve on a background thread; returns once both are listening."""
        if self._loop_thread is not None:
            raise RuntimeError("gateway already started")
        self._stopping = False
        for route, handler in self._handlers.items():
            if isinstance(handler, FunctionPool):
                self._pools[route] = handler
            else:
                pool = FunctionPool(
                    f"ws_{_ROUTE_NAMES[route]}",
                    handler,
                    concurrency=self._handler_workers,
                    function_name=self._function_name(route),
                    timeout_seconds=LAMBDA_TIMEOUT,
                )
                self._pools[route] = pool
                self._own_pools.append(pool)
        try:
            # The management port first: it is the events' domainName (see _base_context).
            self._management_sock = bind(self._host, self._management_port)
            self._management_bound_port = int(self._management_sock.getsockname()[1])
            ready = threading.Event()
            failure: list[BaseException] = []
            self._loop_thread = threading.Thread(
                target=self._run_loop, args=(ready, failure), name="ws-gateway-loop", daemon=False
            )
            self._loop_thread.start()
            ready.wait()
            if failure:
                self._loop_thread.join()
                raise failure[0]
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close every socket (firing `$disconnect`), stop both servers and join all threads; idempotent."""
        self._stopping = True
        # Sockets first, while @connections still answers, so $disconnect handlers may still call it.
        if self._loop_thread is not None:
            if self._loop is not None and self._stop_event is not None:
                with contextlib.suppress(RuntimeError):  # loop already closed
                    self._loop.call_soon_threadsafe(self._stop_event.set)
            self._loop_thread.join()
            self._loop_thread = None
        if self._management_sock is not None:
            self._management_sock.close()
            self._management_sock = None
        for pool in self._own_pools:
            pool.stop()
        self._own_pools = []
        self._pools = {}
        self._loop = None
        self._stop_event = None

    def __enter__(self) -> WebSocketGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- event loop ------------------------------------------------------------------------------------

    def _require_started(self) -> None:
        if self._bound_port is None or self._management_sock is None:
            raise RuntimeError("gateway not started")

    def _run_loop(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:  # reported to start() if it happened before ready
            if not ready.is_set():
                failure.append(exc)
                ready.set()
            else:
                logger.exception("WebSocket gateway loop crashed")

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server: Server = await serve(
            self._serve_connection,
            self._host,
            self._port,
            process_request=self._process_request,
            process_response=self._process_response,
            max_size=MAX_MESSAGE_BYTES,
            # API Gateway does not ping clients; idle connections are closed by the idle timeout instead.
            ping_interval=None,
            # Generous buffer so pushes rarely wait on a slow reader; see _post for what happens when they do.
            write_limit=1024 * 1024,
            server_header=None,
        )
        assert self._management_sock is not None
        # A @connections body above 128 KB gets the API's own 413, so the server lets a little more in.
        management = HttpServer(self._management_request, self._management_sock, Limits(max_body=4 * MAX_MESSAGE_BYTES))
        try:
            await management.start()
        except BaseException:
            server.close()
            await server.wait_closed()
            raise
        self._management = management
        self._bound_port = server.sockets[0].getsockname()[1]
        sweeper = asyncio.create_task(self._sweep_limits())
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            sweeper.cancel()
            with self._lock:
                for conn in self._connections.values():
                    conn.close_cause = conn.close_cause or _GOING_AWAY
            # Closes open sockets with 1001 and waits for every connection handler, hence every $disconnect.
            server.close(close_connections=True, code=1001, reason="Going away")
            await server.wait_closed()
            await management.stop()
            self._management = None

    async def _sweep_limits(self) -> None:
        interval = max(0.05, min(1.0, self._idle_timeout / 4, self._max_duration / 4))
        while True:
            await asyncio.sleep(interval)
            now = _now_ms()
            expired = []
            with self._lock:
                for conn in self._connections.values():
                    idle = now - conn.last_active > self._idle_timeout * 1000
                    too_old = now - conn.connected_at > self._max_duration * 1000
                    if (idle or too_old) and conn.close_cause is None:
                        conn.close_cause = _GOING_AWAY
                        expired.append(conn)
            for conn in expired:
                if conn.ws is not None:
                    asyncio.create_task(conn.ws.close(*_GOING_AWAY))

    # -- events ------------------------------------------------------------------------------------------

    def _base_context(self, conn: _Connection, route_key: str, event_type: str) -> dict[str, Any]:
        now = _now_ms()
        request_id = _aws_id()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self._stage,
            "connectedAt": conn.connected_at,
            "requestTimeEpoch": now,
            "identity": {"sourceIp": conn.source_ip},
            "requestId": request_id,
            # In AWS `https://{domainName}/{stage}` is the @connections endpoint; here the management server is.
            "domainName": f"{self._host}:{self._management_bound_port}",
            "connectionId": conn.connection_id,
            "apiId": self._api_id,
        }

    def _connect_event(self, conn: _Connection, request: Request) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in request.headers.raw_items():
            if name.lower() in _DROPPED_HEADERS:
                continue
            headers[name] = value
            multi.setdefault(name, []).append(value)
        added = {
            "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}",
            "X-Forwarded-For": conn.source_ip,
            "X-Forwarded-Port": str(self._bound_port),
            "X-Forwarded-Proto": "http",
        }
        for name, value in added.items():
            headers[name] = value
            multi[name] = [value]
        event: dict[str, Any] = {"headers": headers, "multiValueHeaders": multi}
        query = urlsplit(request.path).query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            event["queryStringParameters"] = {k: v for k, v in pairs}  # last value wins, as in API Gateway
            multi_query: dict[str, list[str]] = {}
            for k, v in pairs:
                multi_query.setdefault(k, []).append(v)
            event["multiValueQueryStringParameters"] = multi_query
        event["requestContext"] = self._base_context(conn, "$connect", "CONNECT")
        event["isBase64Encoded"] = False
        return event

    def _message_event(self, conn: _Connection, message: str | bytes) -> dict[str, Any]:
        context = self._base_context(conn, "$default", "MESSAGE")
        context["messageId"] = _aws_id()
        if isinstance(message, bytes):
            return {"requestContext": context, "body": base64.b64encode(message).decode(), "isBase64Encoded": True}
        return {"requestContext": context, "body": message, "isBase64Encoded": False}

    def _disconnect_event(self, conn: _Connection, code: int, reason: str) -> dict[str, Any]:
        context = self._base_context(conn, "$disconnect", "DISCONNECT")
        context["disconnectStatusCode"] = code
        context["disconnectReason"] = reason
        headers = {"Host": context["domainName"], "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
        return {
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "requestContext": context,
            "isBase64Encoded": False,
        }

    def _function_name(self, route_key: str) -> str:
        return f"{self._function_prefix}-websocket_{_ROUTE_NAMES[route_key]}"

    async def _invoke(self, route_key: str, event: dict[str, Any], timeout: float | None = None) -> Any:
        """Run the route's handler in its function's environments (never on the loop); its exceptions
        propagate, and Throttled when the route's pool and queue are full ($disconnect never is)."""
        context = LambdaContext(self._function_name(route_key), timeout_seconds=LAMBDA_TIMEOUT)
        invocation = self._pools[route_key].invoke_async(event, context, throttle=route_key != "$disconnect")
        if timeout is None:
            return await invocation
        return await asyncio.wait_for(invocation, timeout)

    # -- WebSocket side -----------------------------------------------------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != self._path:
            return _reject(ws, 404, {"message": "Not Found"})
        if self._stopping:
            return _reject(ws, 503, {"message": "Service Unavailable"})
        remote = ws.remote_address
        now = _now_ms()
        with self._lock:
            connection_id = _aws_id()
            while connection_id in self._connections or connection_id in self._reserved:
                connection_id = _aws_id()
            self._reserved.add(connection_id)
        conn = _Connection(
            connection_id=connection_id,
            source_ip=str(remote[0]) if remote else "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
            connected_at=now,
            last_active=now,
        )
        ws.livedrop_connection = conn  # type: ignore[attr-defined]
        status = 200
        if "$connect" in self._handlers:
            try:
                result = await self._invoke("$connect", self._connect_event(conn, request), self._integration_timeout)
            except TimeoutError:
                logger.error("$connect handler timed out after %.0f s", self._integration_timeout)
                status = 504
            except Throttled:
                status = 429
            except Exception:
                # A Lambda error: API Gateway refuses the handshake with 500.
                logger.exception("$connect handler raised")
                status = 500
            else:
                status = _status_of(result)
                if isinstance(result, dict) and isinstance(result.get("headers"), dict):
                    conn.response_headers = {str(k): str(v) for k, v in result["headers"].items()}
        if not 200 <= status < 300:
            with self._lock:
                self._reserved.discard(connection_id)
            return _reject(ws, status, {"message": _phrase(status)})
        return None

    async def _process_response(self, ws: ServerConnection, request: Request, response: Response) -> None:
        conn: _Connection | None = getattr(ws, "livedrop_connection", None)
        if conn is None or response.status_code != 101:
            return
        # API Gateway passes the $connect response's subprotocol choice on to the handshake.
        protocol = next((v for k, v in conn.response_headers.items() if k.lower() == "sec-websocket-protocol"), None)
        if protocol:
            response.headers["Sec-WebSocket-Protocol"] = protocol

    async def _serve_connection(self, ws: ServerConnection) -> None:
        conn: _Connection = ws.livedrop_connection  # type: ignore[attr-defined]
        conn.ws = ws
        with self._lock:
            self._reserved.discard(conn.connection_id)
            self._connections[conn.connection_id] = conn
            if self._stopping:
                conn.close_cause = conn.close_cause or _GOING_AWAY
        try:
            # One message at a time per connection keeps its order; other connections use the other workers.
            async for message in ws:
                conn.last_active = _now_ms()
                await self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                if self._connections.get(conn.connection_id) is conn:
                    del self._connections[conn.connection_id]
            await self._on_disconnect(conn, ws)

    async def _on_message(self, conn: _Connection, message: str | bytes) -> None:
        event = self._message_event(conn, message)
        request_id = event["requestContext"]["requestId"]
        if "$default" not in self._handlers:
            # What API Gateway answers when no route matches.
            await self._send_error(conn, {"message": "Forbidden", "connectionId": conn.connection_id})
            return
        try:
            # Return values are not echoed: Chalice handlers reply through @connections, not route responses.
            await self._invoke("$default", event)
        except Throttled:
            # API Gateway's frame for a throttled route; the connection stays open.
            error = {"message": "Too Many Requests", "connectionId": conn.connection_id, "requestId": request_id}
            await self._send_error(conn, error)
        except Exception:
            logger.exception("$default handler raised")
            error = {"message": "Internal server error", "connectionId": conn.connection_id, "requestId": request_id}
            await self._send_error(conn, error)

    async def _send_error(self, conn: _Connection, body: dict[str, Any]) -> None:
        assert conn.ws is not None
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(json.dumps(body))

    async def _on_disconnect(self, conn: _Connection, ws: ServerConnection) -> None:
        if conn.close_cause is not None:
            code, reason = conn.close_cause
        else:
            received = ws.protocol.close_rcvd
            if received is None:
                code, reason = 1006, "Connection closed abnormally"
            elif received.code == 1005:
                code, reason = 1005, "Client-side close frame status not set"
            else:
                code, reason = received.code, f"Client-side close frame status set to {received.code}"
        if "$disconnect" not in self._handlers:
            return
        try:
            await self._invoke("$disconnect", self._disconnect_event(conn, code, reason))
        except Exception:
            logger.exception("$disconnect handler raised")

    # -- @connections (served on the loop) ------------------------------------------------------------

    async def _management_request(self, request: HttpRequest) -> HttpResponse:
        match = _CONNECTIONS_PATH.match(urlsplit(request.target).path)
        if match is None:
            return _management_reply(404, {"message": "Not Found"}, "NotFoundException")
        connection_id = unquote(match.group(1))
        if request.method == "POST":
            data = request.body or b""
            if len(data) > MAX_MESSAGE_BYTES:
                return _management_reply(413, {"message": "Request entity too large"}, "PayloadTooLargeException")
            # A lost post (fault injection, devstack.faults) is acknowledged and never delivered.
            if faults.drops_post() or await self._post(connection_id, data) == 200:
                return _management_reply(200)
        elif request.method == "GET":
            description = self._describe(connection_id)
            if description is not None:
                return _management_reply(200, description)
        elif request.method == "DELETE":
            if self._delete(connection_id) == 204:
                return _management_reply(204)
        else:
            return _management_reply(404, {"message": "Not Found"}, "NotFoundException")
        return _management_reply(410, {"message": "The connection is gone"}, "GoneException")

    def _lookup(self, connection_id: str) -> _Connection | None:
        with self._lock:
            conn = self._connections.get(connection_id)
        if conn is None or conn.close_cause is not None or conn.ws is None:
            return None
        return conn

    async def _post(self, connection_id: str, data: bytes) -> int:
        conn = self._lookup(connection_id)
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
        conn.last_active = _now_ms()
        return 200

    def _delete(self, connection_id: str) -> int:
        conn = self._lookup(connection_id)
        if conn is None or conn.ws is None:
            return 410
        conn.close_cause = (1000, "Connection deleted through the @connections API")
        with self._lock:
            if self._connections.get(conn.connection_id) is conn:
                del self._connections[conn.connection_id]
        # Like API Gateway, answer 204 without waiting for the closing handshake.
        asyncio.ensure_future(conn.ws.close(1000, ""))
        return 204

    def _describe(self, connection_id: str) -> dict[str, Any] | None:
        conn = self._lookup(connection_id)
        if conn is None:
            return None
        return {
            "connectedAt": _iso(conn.connected_at),
            "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            "lastActiveAt": _iso(conn.last_active),
        }


def _management_reply(status: int, body: dict[str, Any] | None = None, error_type: str | None = None) -> HttpResponse:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    if status == 204:
        return HttpResponse(204, headers)
    headers["Content-Type"] = "application/json"
    return HttpResponse(status, headers, json.dumps(body).encode() if body is not None else b"")


def _status_of(result: Any) -> int:
    """The HTTP status API Gateway derives from a Lambda proxy result (Chalice returns {'statusCode': 200})."""
    if result is None:
        return 200
    if not isinstance(result, dict):
        return 502
    status = result.get("statusCode", 200)
    try:
        status = int(status)
    except (TypeError, ValueError):
        return 502
    return status if 100 <= status <= 599 else 502


def _phrase(status: int) -> str:
    if status == 500:
        return "Internal server error"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _reject(ws: ServerConnection, status: int, body: dict[str, Any]) -> Response:
    try:
        http_status: http.HTTPStatus | int = http.HTTPStatus(status)
    except ValueError:
        http_status = 502
    response = ws.respond(http_status, json.dumps(body))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


__all__ = ["WebSocketGateway"]
