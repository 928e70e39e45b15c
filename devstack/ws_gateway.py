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
- an inbound frame above 32 KB, or message above 128 KB (frames of 32 KB at most), closes with 1009.
- `POST|GET|DELETE /@connections/{id}` (also under `/{stage}/`), 410 GoneException for unknown or closed ids,
  413 above 128 KB.
- 10 min idle / 2 h maximum connection duration (configurable); only inbound data frames and pushes count as
  activity, so a client that only sends ping frames is still closed when idle.

One asyncio loop serves both the sockets (websockets' server) and the management API (devstack.connections_api
over devstack.http11), so a push is written by the loop that owns the socket and no socket costs a thread. The
events are built by devstack.lambda_events.websocket; the open connections are a devstack.ws_connections
registry both sides share. Handlers run in execution
environments (devstack.environments), one pool per route, as API Gateway invokes one function per route: a
storm of `$disconnect`s queues in its own pool and never holds back `$default` messages or pushes. A route
whose pool and queue are full is throttled as API Gateway does: `$connect` is refused with 429 and a
`$default` message gets the `Too Many Requests` frame; `$disconnect` always waits its turn (it must run).
Pools passed in are the caller's; for plain callables the gateway makes pools of `handler_workers`
environments and ends them on `stop()`, which closes every socket and joins every thread it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from devstack.connections_api import MAX_MESSAGE_BYTES, ConnectionsApi
from devstack.environments import FunctionPool, Throttled
from devstack.http11 import HttpServer, Limits, bind
from devstack.lambda_events.websocket import WebSocketApi, connect_event, disconnect_event, message_event
from devstack.lambda_runtime import LambdaContext
from devstack.ws_connections import GOING_AWAY, Connection, ConnectionRegistry, now_ms

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@runtime_checkable
class Function(Protocol):
    """What runs a route: a devstack.environments.FunctionPool, or devstack.ws_process's stand-in for one in
    another process."""

    async def invoke_async(self, event: dict[str, Any], context: Any = None, *, throttle: bool = True) -> Any: ...


INTEGRATION_TIMEOUT = 29.0  # API Gateway's integration timeout
MAX_FRAME_BYTES = 32 * 1024  # API Gateway's WebSocket frame limit (a message may span frames up to 128 KB)
LAMBDA_TIMEOUT = 60.0  # what get_remaining_time_in_millis() counts down from (Chalice's default)
_ROUTE_NAMES = {"$connect": "connect", "$default": "message", "$disconnect": "disconnect"}


class WebSocketGateway:
    """API Gateway's WebSocket API on 127.0.0.1: `$connect`/`$default`/`$disconnect` plus `@connections`."""

    def __init__(
        self,
        handlers: Mapping[str, Handler | Function],
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

        self._connections = ConnectionRegistry()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._loop_thread: threading.Thread | None = None
        self._pools: dict[str, Function] = {}
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
    def pools(self) -> dict[str, Function]:
        """The execution environments of each route ($connect, $default, $disconnect)."""
        return dict(self._pools)

    def start(self) -> None:
        """Bind both ports and serve on a background thread; returns once both are listening."""
        if self._loop_thread is not None:
            raise RuntimeError("gateway already started")
        self._stopping = False
        for route, handler in self._handlers.items():
            if isinstance(handler, Function):
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
            # API Gateway's limits: a frame above 32 KB, or a message above 128 KB, closes the socket with 1009.
            max_size=(MAX_MESSAGE_BYTES, MAX_FRAME_BYTES),
            # API Gateway does not ping clients; idle connections are closed by the idle timeout instead.
            ping_interval=None,
            # Generous buffer so pushes rarely wait on a slow reader; see _post for what happens when they do.
            write_limit=1024 * 1024,
            server_header=None,
        )
        assert self._management_sock is not None
        api = ConnectionsApi(self._connections, send_timeout=self._send_timeout)
        # A @connections body above 128 KB gets the API's own 413, so the server lets a little more in.
        management = HttpServer(api.handle, self._management_sock, Limits(max_body=4 * MAX_MESSAGE_BYTES))
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
            self._connections.close_all()
            # Closes open sockets with 1001 and waits for every connection handler, hence every $disconnect.
            server.close(close_connections=True, code=1001, reason="Going away")
            await server.wait_closed()
            await management.stop()
            self._management = None

    async def _sweep_limits(self) -> None:
        interval = max(0.05, min(1.0, self._idle_timeout / 4, self._max_duration / 4))
        while True:
            await asyncio.sleep(interval)
            for conn in self._connections.expire(self._idle_timeout, self._max_duration):
                if conn.ws is not None:
                    asyncio.create_task(conn.ws.close(*GOING_AWAY))

    # -- events ------------------------------------------------------------------------------------------

    def _api(self) -> WebSocketApi:
        """What this gateway's events name as their API (the management server is their domainName)."""
        return WebSocketApi(
            api_id=self._api_id,
            stage=self._stage,
            domain_name=f"{self._host}:{self._management_bound_port}",
            port=self._bound_port or self._port,
        )

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
        now = now_ms()
        connection_id = self._connections.reserve_id()
        conn = Connection(
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
                result = await self._invoke(
                    "$connect",
                    connect_event(self._api(), conn, request.headers.raw_items(), request.path),
                    self._integration_timeout,
                )
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
            self._connections.release_id(connection_id)
            return _reject(ws, status, {"message": _phrase(status)})
        return None

    async def _process_response(self, ws: ServerConnection, request: Request, response: Response) -> None:
        conn: Connection | None = getattr(ws, "livedrop_connection", None)
        if conn is None or response.status_code != 101:
            return
        # API Gateway passes the $connect response's subprotocol choice on to the handshake.
        protocol = next((v for k, v in conn.response_headers.items() if k.lower() == "sec-websocket-protocol"), None)
        if protocol:
            response.headers["Sec-WebSocket-Protocol"] = protocol

    async def _serve_connection(self, ws: ServerConnection) -> None:
        conn: Connection = ws.livedrop_connection  # type: ignore[attr-defined]
        conn.ws = ws
        self._connections.add(conn, closing=self._stopping)
        try:
            # One message at a time per connection keeps its order; other connections use the other workers.
            async for message in ws:
                conn.last_active = now_ms()
                await self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self._connections.remove(conn)
            await self._on_disconnect(conn, ws)

    async def _on_message(self, conn: Connection, message: str | bytes) -> None:
        event = message_event(self._api(), conn, message)
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

    async def _send_error(self, conn: Connection, body: dict[str, Any]) -> None:
        assert conn.ws is not None
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(json.dumps(body))

    async def _on_disconnect(self, conn: Connection, ws: ServerConnection) -> None:
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
            await self._invoke("$disconnect", disconnect_event(self._api(), conn, code, reason))
        except Exception:
            logger.exception("$disconnect handler raised")


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
