"""The dev stack's API Gateway (REST): HTTP requests become API Gateway proxy events for the app.

Routing follows the app's Chalice routes (chalice.local's RouteMatcher); routes that carry an
authorizer get what API Gateway's Cognito authorizer does: 401 without a valid id token, and the
token's claims in `requestContext.authorizer.claims` otherwise.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalice import Chalice
from chalice.local import RouteMatcher

from devstack.lambda_runtime import LambdaContext, serve_concurrently
from infra import gateway_responses

ClaimsFor = Callable[[str | None], dict[str, str]]
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(ThreadingHTTPServer):
    # A rush opens many connections at once; the default listen backlog of 5 resets the surplus.
    request_queue_size = 1024


class HttpGateway:
    """Serves `app` on 127.0.0.1 as API Gateway would; `static_dir` is served under /web/.

    `web_config`, when given, is served as /web/config.json: how the web page finds the WebSocket URL.
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
    ) -> None:
        self.app = serve_concurrently(app)
        self._claims_for = claims_for
        self._stage = stage
        self._static_dir = static_dir
        self._web_config = web_config
        self._matcher = RouteMatcher(list(app.routes))
        self._server = _Server((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def invoke(self, method: str, raw_path: str, headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
        """One request through routing, the authorizer and the app; returns the proxy response dict."""
        try:
            event = self._event(method, raw_path, headers, body)
        except _Refused as refused:
            # API Gateway's gateway responses, in the API's error shape (infra/gateway_responses.py).
            kind = "UNAUTHORIZED" if refused.status == 401 else "MISSING_AUTHENTICATION_TOKEN"
            error_type = "UnauthorizedException" if refused.status == 401 else "MissingAuthenticationTokenException"
            return {
                "statusCode": refused.status,
                "headers": {"Content-Type": "application/json", "x-amzn-ErrorType": error_type},
                "body": gateway_responses.body(kind).decode(),
            }
        return self.app(event, LambdaContext("api"))

    def _event(self, method: str, raw_path: str, headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
        parts = urlsplit(raw_path)
        try:
            match = self._matcher.match_route(parts.path or "/")
        except ValueError:
            raise _Refused(403, "Missing Authentication Token") from None
        route = self.app.routes[match.route].get(method)
        if route is None:
            raise _Refused(403, "Missing Authentication Token")
        lower = {k.lower(): v for k, v in headers.items()}
        claims = None
        if route.authorizer is not None:
            try:
                claims = self._claims_for(lower.get("authorization"))
            except Exception:
                raise _Refused(401, "Unauthorized") from None
        query = parse_qs(parts.query, keep_blank_values=True)
        now = datetime.now(UTC)
        request_id = str(uuid.uuid4())
        path = parts.path or "/"
        is_binary = body is not None and not (_is_text(lower.get("content-type", "")) and _is_utf8(body))
        return {
            "version": "1.0",
            "resource": match.route,
            "path": path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "devstack",
                "authorizer": {"claims": claims, "scopes": None},
                "domainName": lower.get("host", "127.0.0.1"),
                "domainPrefix": "devstack",
                "extendedRequestId": request_id,
                "httpMethod": method,
                "identity": {"sourceIp": "127.0.0.1", "userAgent": lower.get("user-agent", "")},
                "path": f"/{self._stage}{path}",
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(time.time() * 1000),
                "resourceId": None,
                "resourcePath": match.route,
                "stage": self._stage,
            },
            "pathParameters": match.captured or None,
            "stageVariables": None,
            "body": (base64.b64encode(body).decode() if is_binary else body.decode("utf-8")) if body else None,
            "isBase64Encoded": bool(body) and is_binary,
        }

    def _static(self, path: str) -> tuple[bytes, str] | None:
        if path == "/web/config.json" and self._web_config is not None:
            return json.dumps(self._web_config).encode(), "application/json"
        if self._static_dir is None:
            return None
        relative = path[len("/web/") :] or "index.html"
        target = (self._static_dir / relative).resolve()
        if self._static_dir.resolve() not in target.parents or not target.is_file():
            return None
        return target.read_bytes(), mimetypes.guess_type(target.name)[0] or "application/octet-stream"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the body waits for the client's
            # delayed ACK of the headers (about 40 ms) on every keep-alive response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return

            def parse_request(self) -> bool:
                # http.server parses headers with the email package, several times slower than the
                # rest of a cached read; a plain split does for the well-formed HTTP/1.1 of clients.
                words = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n").split()
                if len(words) != 3 or not words[2].startswith("HTTP/1."):
                    self.request_version = "HTTP/1.0"
                    self.send_error(400, "Bad request line")
                    return False
                self.command, self.path, self.request_version = words
                self.requestline = " ".join(words)
                headers = _Headers()
                while True:
                    line = self.rfile.readline(65537)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    if len(headers) > 100 or len(line) > 65536 or b":" not in line:
                        self.send_error(431 if len(headers) > 100 else 400, "Bad header")
                        return False
                    name, _, value = line.decode("iso-8859-1").partition(":")
                    headers[name.strip()] = value.strip()
                self.headers = headers  # type: ignore[assignment]
                connection = (headers.get("Connection") or "").lower()
                self.close_connection = connection == "close" or (
                    self.request_version == "HTTP/1.0" and connection != "keep-alive"
                )
                return True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(413, {"Content-Type": "application/json"}, gateway_responses.body("REQUEST_TOO_LARGE"))
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else None
                path = urlsplit(self.path).path
                if self.command == "GET" and (path == "/" or path.startswith("/web/")):
                    self._serve_static(path)
                    return
                response = gateway.invoke(self.command, self.path, dict(self.headers.items()), body)
                payload = response.get("body") or ""
                raw = base64.b64decode(payload) if response.get("isBase64Encoded") else str(payload).encode()
                headers = dict(response.get("headers") or {})
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    headers[name] = ", ".join(values)
                self._send(int(response["statusCode"]), headers, raw)

            def _serve_static(self, path: str) -> None:
                if path == "/":
                    self._send(302, {"Location": "/web/"}, b"")
                    return
                found = gateway._static(path)
                if found is None:
                    self._send(404, {"Content-Type": "text/plain"}, b"not found")
                else:
                    self._send(200, {"Content-Type": found[1], "Cache-Control": "no-cache"}, found[0])

            def _send(self, status: int, headers: dict[str, str], raw: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(raw)

            def __getattr__(self, name: str) -> Any:
                # Any method reaches routing, which answers 403 for one the API does not define,
                # as API Gateway does (http.server would answer 501).
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        return Handler


class _Headers(dict[str, str]):
    """Request headers as sent, looked up without regard to case."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        lowered = name.lower()
        for key, value in self.items():
            if key.lower() == lowered:
                return value
        return default


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return not kind or kind.startswith("text/") or kind.endswith("json") or kind == "application/x-www-form-urlencoded"
