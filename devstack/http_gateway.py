"""The dev stack's API Gateway (REST): HTTP requests become API Gateway proxy events for the app.

Routing follows the app's Chalice routes (chalice.local's RouteMatcher); routes that carry an
authorizer get what API Gateway's Cognito authorizer does: 401 without a valid id token, and the
token's claims in `requestContext.authorizer.claims` otherwise.

Sockets are served by one event loop (devstack.http11: keep-alive, pipelining, read timeouts, limits);
each request is handed to the api function's execution environments (devstack.environments), so a
client opening a new connection per request costs a socket, never a thread or a client build. When
every environment is busy and the queue is full the answer is 429, as API Gateway throttles.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import mimetypes
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalice import Chalice
from chalice.local import RouteMatcher

from devstack import dev_emails
from devstack.environments import FunctionPool, Throttled
from devstack.http11 import HttpServer, Limits, Request, Response, bind
from devstack.lambda_events.apigateway import rest_event
from devstack.lambda_runtime import LambdaContext, serve_concurrently
from infra import gateway_responses

logger = logging.getLogger(__name__)
ClaimsFor = Callable[[str | None], dict[str, str]]
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
INTEGRATION_TIMEOUT = 29.0  # API Gateway's REST integration timeout
API_FUNCTION = "api"
_THROTTLE_HEADERS = {"x-amzn-ErrorType": "TooManyRequestsException", "Retry-After": "1"}


_CHECK = object()  # _event's claims not checked yet: the authorizer runs there


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# The web page's own file types, pinned: `mimetypes` reads the machine's mime.types, and without one
# Python 3.11 calls .js application/javascript; the page's ES modules are served as text/javascript.
WEB_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".json": "application/json"}


class HttpGateway:
    """Serves `app` on 127.0.0.1 as API Gateway would; `static_dir` is served under /web/.

    `web_config`, when given, is served as /web/config.json: how the web page finds the WebSocket URL.
    `pool` runs the app (the api function's environments); without one the gateway makes its own.
    """

    def __init__(
        self,
        app: Chalice,
        claims_for: ClaimsFor,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "api",
        static_dir: Path | None = None,
        web_config: dict[str, Any] | None = None,
        *,
        pool: FunctionPool | None = None,
        limits: Limits | None = None,
        integration_timeout: float = INTEGRATION_TIMEOUT,
    ) -> None:
        self.app = serve_concurrently(app)
        self._claims_for = claims_for
        self._stage = stage
        self._static_dir = static_dir
        self._web_config = web_config
        self._matcher = RouteMatcher(list(app.routes))
        self._own_pool = pool is None
        self.pool = pool if pool is not None else FunctionPool(API_FUNCTION, self.app, timeout_seconds=29)
        self._integration_timeout = integration_timeout
        self._limits = limits or Limits(max_body=MAX_BODY)
        self._limits = dataclasses.replace(self._limits, too_large=gateway_responses.body("REQUEST_TOO_LARGE"))
        self._authorizer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="http-gateway-authorizer")
        # Bound now, so the URL is known before start(), as it was with the threaded server.
        self._sock = bind(host, port)
        self._server: HttpServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def held(self) -> tuple[int, dict[str, int]]:
        """What the front door holds now: bytes buffered for unhandled requests, connections per client
        address (both capped by Limits: max_buffered_bytes, max_connections_per_client)."""
        server = self._server
        return (server.buffered, dict(server.clients)) if server is not None else (0, {})

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._server = HttpServer(self._handle, self._sock, self._limits)
        self._thread = threading.Thread(target=loop.run_forever, name="http-gateway", daemon=True)
        self._thread.start()
        self._loop = loop
        asyncio.run_coroutine_threadsafe(self._server.start(), loop).result(10)

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and server is not None:
            try:
                asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                if self._thread is not None:
                    self._thread.join(timeout=5)
                loop.close()
        self._loop = self._server = self._thread = None
        self._sock.close()
        self._authorizer.shutdown(wait=True)
        if self._own_pool:
            self.pool.stop()

    def invoke(self, method: str, raw_path: str, headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
        """One request through routing, the authorizer and the app; returns the proxy response dict."""
        try:
            event = self._event(method, raw_path, headers, body)
        except _Refused as refused:
            return _refusal(refused)
        return dict(self.pool(event, self._context()))

    def _context(self) -> LambdaContext:
        return LambdaContext(self.pool.function_name, timeout_seconds=self.pool.timeout_seconds)

    async def _handle(self, request: Request) -> Response:
        """The event loop's side of a request: static files, or an event for the api function."""
        path = urlsplit(request.target).path
        if request.method == "GET" and (path == "/" or path.startswith("/web/")):
            return self._serve_static(path)
        if request.method == "GET" and path == dev_emails.PATH:
            status, body = await asyncio.to_thread(dev_emails.answer, request.target)
            return Response(status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, body)
        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value
            multi.setdefault(name, []).append(value)
        try:
            claims = await self._authorize(request.method, request.target, headers)
            event = self._event(request.method, request.target, headers, request.body, multi, claims=claims)
        except _Refused as refused:
            return _to_response(_refusal(refused))
        try:
            result = await asyncio.wait_for(self.pool.invoke_async(event, self._context()), self._integration_timeout)
        except Throttled:
            # API Gateway's throttle (429 Too Many Requests), in the API's error shape.
            return _gateway_response(429, "THROTTLED", **_THROTTLE_HEADERS)
        except TimeoutError:
            return _gateway_response(504, "INTEGRATION_TIMEOUT")
        except Exception:
            # A Lambda error (the handler raised past Chalice): API Gateway answers 502.
            logger.exception("api function failed on %s %s", request.method, request.target)
            return _gateway_response(502, "DEFAULT_5XX")
        if not isinstance(result, dict) or "statusCode" not in result:
            return _gateway_response(502, "DEFAULT_5XX")
        return _to_response(result)

    async def _authorize(self, method: str, raw_path: str, headers: dict[str, str]) -> dict[str, str] | None:
        """The Cognito authorizer's claims for a route that has one, checked off the loop: verifying a token
        may fetch the pool's keys, and no client may hold every other connection up with that."""
        route = self._route(method, raw_path)
        if route.authorizer is None:
            return None
        header = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._authorizer, self._claims_for, header)
        except Exception:
            raise _Refused(401, "Unauthorized") from None

    def _route(self, method: str, raw_path: str) -> Any:
        try:
            match = self._matcher.match_route(urlsplit(raw_path).path or "/")
        except ValueError:
            raise _Refused(403, "Missing Authentication Token") from None
        route = self.app.routes[match.route].get(method)
        if route is None:
            raise _Refused(403, "Missing Authentication Token")
        return route

    def _serve_static(self, path: str) -> Response:
        if path == "/":
            return Response(302, {"Location": "/web/"})
        found = self._static(path)
        if found is None:
            return Response(404, {"Content-Type": "text/plain"}, b"not found")
        return Response(200, {"Content-Type": found[1], "Cache-Control": "no-cache"}, found[0])

    def _event(
        self,
        method: str,
        raw_path: str,
        headers: dict[str, str],
        body: bytes | None,
        multi: dict[str, list[str]] | None = None,
        *,
        claims: Any = _CHECK,
    ) -> dict[str, Any]:
        """The proxy event of a request; the authorizer runs here unless `claims` come already checked."""
        parts = urlsplit(raw_path)
        try:
            match = self._matcher.match_route(parts.path or "/")
        except ValueError:
            raise _Refused(403, "Missing Authentication Token") from None
        route = self.app.routes[match.route].get(method)
        if route is None:
            raise _Refused(403, "Missing Authentication Token")
        lower = {k.lower(): v for k, v in headers.items()}
        if route.authorizer is None:
            claims = None
        elif claims is _CHECK:
            try:
                claims = self._claims_for(lower.get("authorization"))
            except Exception:
                raise _Refused(401, "Unauthorized") from None
        return rest_event(
            method,
            raw_path,
            headers,
            body,
            resource=match.route,
            path_parameters=match.captured,
            claims=claims,
            stage=self._stage,
            multi=multi,
        )

    def _static(self, path: str) -> tuple[bytes, str] | None:
        if path == "/web/config.json" and self._web_config is not None:
            return json.dumps(self._web_config).encode(), "application/json"
        if self._static_dir is None:
            return None
        relative = path[len("/web/") :] or "index.html"
        target = (self._static_dir / relative).resolve()
        if self._static_dir.resolve() not in target.parents or not target.is_file():
            return None
        content_type = WEB_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
        return target.read_bytes(), content_type or "application/octet-stream"


def _refusal(refused: _Refused) -> dict[str, Any]:
    # API Gateway's gateway responses, in the API's error shape (infra/gateway_responses.py).
    kind = "UNAUTHORIZED" if refused.status == 401 else "MISSING_AUTHENTICATION_TOKEN"
    error_type = "UnauthorizedException" if refused.status == 401 else "MissingAuthenticationTokenException"
    return {
        "statusCode": refused.status,
        "headers": {"Content-Type": "application/json", "x-amzn-ErrorType": error_type},
        "body": gateway_responses.body(kind).decode(),
    }


def _gateway_response(status: int, kind: str, **headers: str) -> Response:
    """What API Gateway itself answers, in the API's error shape (infra/gateway_responses.py)."""
    return Response(status, {"Content-Type": "application/json", **headers}, gateway_responses.body(kind))


def _to_response(result: dict[str, Any]) -> Response:
    """A Lambda proxy result as the HTTP response API Gateway makes of it."""
    payload = result.get("body") or ""
    raw = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(str(v) for v in values)
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"  # what API Gateway sends when the function names none
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return _gateway_response(502, "DEFAULT_5XX")
    return Response(status, headers, raw)
