"""The embedded AWS: moto in server mode, in a child process of its own, on 127.0.0.1.

A child process keeps moto's CPU work off the GIL of the process that runs the app, gateways and
pumps. `python -m devstack.moto_backend --port 0` prints `LISTENING <port>` once it serves.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


class SerializedApp:
    """WSGI middleware that lets one request at a time into moto (its backends are not thread-safe)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            return list(self._app(environ, start_response))


def build_app() -> Any:
    """moto's WSGI app, wrapped for safe concurrent use."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return SerializedApp(DomainDispatcherApplication(create_backend_app))


def serve(port: int) -> None:
    """Serve the embedded AWS on 127.0.0.1:`port` until SIGTERM/SIGINT."""
    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import MotoRequestHandler

    server = make_server("127.0.0.1", port, build_app(), threaded=True, request_handler=MotoRequestHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


class EmbeddedAws:
    """Starts and stops the embedded AWS child process; `endpoint` is its URL."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._process: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def start(self, timeout: float = 30.0) -> str:
        env = {**os.environ, **FAKE_ENV}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devstack.moto_backend", "--port", str(self._port)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        deadline = time.monotonic() + timeout
        assert self._process.stdout is not None
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if line.startswith("LISTENING "):
                self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"
                return self.endpoint
            if not line and self._process.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the embedded AWS did not start")

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> EmbeddedAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="LiveDrop's embedded AWS (moto server)")
    parser.add_argument("--port", type=int, default=0)
    os.environ.update(FAKE_ENV)
    serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
