"""The embedded AWS child's HTTP side: a keep-alive request handler for moto's WSGI app, the SES
sent-mail listing, and the watch that stops a child whose parent is gone."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import traceback
from typing import Any


class SentEmails:
    """`GET /_devstack/ses/sent`: what SES sent, as JSON (oldest first); every other request passes on."""

    PATH = "/_devstack/ses/sent"

    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != self.PATH:
            return self._app(environ, start_response)
        import json

        from moto.ses.models import ses_backends

        from devstack.identity import ACCOUNT_ID, REGION

        sent = ses_backends[ACCOUNT_ID][REGION].sent_messages
        body = json.dumps(
            [
                {"message_id": m.id, "source": m.source, "destinations": m.destinations, "raw": m.raw_data}
                for m in sent
                if hasattr(m, "raw_data")
            ]
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def request_handler_class() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveRequestHandler(MotoRequestHandler):
        """HTTP/1.1 keep-alive and no access log; the request body is read whole, so the next request is intact."""

        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without this, Nagle + delayed ACK adds ~40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def run_wsgi(self) -> None:
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.environ = environ = self.make_environ()
            # werkzeug reads at most Content-Length and may read less; whatever it left would be taken
            # for the next request line, so the body is consumed here, exactly.
            if environ.get("wsgi.input_terminated"):
                body = environ["wsgi.input"].read()
            else:
                body = self.rfile.read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)

            response: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                response["status"], response["headers"] = status, headers
                return response.setdefault("written", []).append

            try:
                chunks = self.server.app(environ, start_response)
                try:
                    data = b"".join([*response.get("written", []), *chunks])
                finally:
                    if hasattr(chunks, "close"):
                        chunks.close()
            except Exception:
                self.log_error("Error on request %s %s:\n%s", self.command, self.path, traceback.format_exc())
                response = {"status": "500 INTERNAL SERVER ERROR", "headers": [("Content-Type", "text/plain")]}
                data = b"Internal Server Error"
                self.close_connection = True

            code_str, _, msg = response["status"].partition(" ")
            code = int(code_str)
            self.send_response(code, msg)
            skipped = {"connection", "keep-alive", "transfer-encoding"}
            has_body = self.command != "HEAD" and not (100 <= code < 200) and code not in (204, 304)
            if has_body:
                skipped.add("content-length")
            for name, value in response["headers"]:
                if name.lower() not in skipped:
                    self.send_header(name, value)
            if has_body:
                self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if has_body and data:
                self.wfile.write(data)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # One line per request drowns the dev stack's output; errors still go to log_error.
            pass

    return KeepAliveRequestHandler


def shut_down_when_orphaned(server: Any) -> None:
    """Stop serving once the parent is gone: this process is outside the terminal's process group (so
    Ctrl-C reaches only the parent), and a parent that was killed outright cannot stop it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        server.shutdown()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def cache_action_names() -> None:
    """moto looks a request's action up among its handler class's methods with inspect.getmembers on every
    request (26 to 33 us for SQS and DynamoDB, 5 % of the messaging process's CPU in an order rush); a
    class's methods do not change while the process serves, so each class's names are listed once."""
    import functools

    import moto.core.responses as responses

    listed = functools.lru_cache(maxsize=None)(responses.method_names_from_class)
    responses.method_names_from_class = listed
