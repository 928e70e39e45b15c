"""The WebSocket gateway (devstack.ws_gateway) in a process of its own, as API Gateway is a service of its own.

In the dev stack's process, the gateway's event loop shares one interpreter lock with every function's
environments. Each socket operation releases the lock and must win it back from threads that hold it for
whole switch intervals (a convoy), so during a rush a 1,000-socket fan-out crawled: measured with one
CPU-bound thread beside it, 1,000 posts took 15.9 s with the gateway inside the process and 2.9 s with it
in a process of its own (none: 1.6 and 1.5 s). AWS's gateway never waits for a Lambda function's CPU.

The child serves the sockets and the `@connections` API; the route handlers still run in the dev stack's
execution environments (devstack.environments), in this process, as API Gateway invokes Lambda functions.
Parent and child talk over a socket pair, one pickled message at a time:

    child  -> parent   ("ready", url, management_endpoint) | ("failed", text)
                       ("invoke", id, route, function_name, event, throttle) | ("cancel", id) | ("stopped",)
                       ("faults_set",)
    parent -> child    ("config", gateway keyword arguments) | ("faults", spec) | ("stop",)
                       ("done", id, result) | ("raised", id, kind, function, text)

    gateway = GatewayProcess(port=8001)
    gateway.launch()                       # the child starts while the caller makes its functions
    gateway.start({"$connect": pool, ...}) # returns once both ports listen
    gateway.url, gateway.management_endpoint
    gateway.stop()                         # closes every socket ($disconnect runs), then ends the child
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from devstack.environments import FunctionPool, FunctionTimedOut, Throttled
from devstack.lambda_runtime import LambdaContext

log = logging.getLogger("devstack.ws_gateway")

START_SECONDS = 30.0
STOP_SECONDS = 30.0  # closing every socket runs a $disconnect each


class GatewayProcess:
    """A devstack.ws_gateway.WebSocketGateway in a child process whose handlers are `pools` in this one."""

    def __init__(self, **gateway_options: Any) -> None:
        self._options = gateway_options
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._pools: dict[str, FunctionPool] = {}
        self._running: dict[int, concurrent.futures.Future[Any]] = {}
        self._reader: threading.Thread | None = None
        self._stopped = threading.Event()
        self._faults_set = threading.Event()
        self.url = ""
        self.management_endpoint = ""

    @property
    def pools(self) -> dict[str, FunctionPool]:
        """The execution environments of each route ($connect, $default, $disconnect)."""
        return dict(self._pools)

    @property
    def pid(self) -> int | None:
        """The child process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def exit_code(self) -> int | None:
        """The child's exit status once it has died on its own (None while it runs or after stop())."""
        return self._process.poll() if self._process is not None else None

    def launch(self) -> None:
        """Start the child process without waiting for it (start() waits)."""
        if self._process is not None:
            raise RuntimeError("gateway already launched")
        mine, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "devstack.ws_process", "--fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                # Out of the terminal's process group: Ctrl-C reaches only the parent, which closes the
                # sockets through this child while the functions still answer their $disconnect.
                process_group=0,
            )
        finally:
            theirs.close()
        self._conn = Connection(mine.detach())

    def start(self, pools: Mapping[str, FunctionPool]) -> None:
        """Serve: the child binds both ports and invokes `pools` (by route key) for each route's events."""
        if self._process is None:
            self.launch()
        assert self._conn is not None
        self._pools = dict(pools)
        self._send(("config", self._options))
        if not self._conn.poll(START_SECONDS):
            self.stop()
            raise RuntimeError("the WebSocket gateway's process did not start")
        message = self._conn.recv()
        if message[0] != "ready":
            self.stop()
            raise RuntimeError(f"the WebSocket gateway's process failed to start: {message[1]}")
        self.url, self.management_endpoint = message[1], message[2]
        self._reader = threading.Thread(target=self._read, name="ws-gateway-calls", daemon=True)
        self._reader.start()

    def set_faults(self, spec: str) -> None:
        """Change the child's LIVEDROP_FAULTS (only `drop_post` applies there; see devstack.faults); returns
        once the child applies it to the next post."""
        self._faults_set.clear()
        self._send(("faults", spec))
        if not self._faults_set.wait(START_SECONDS):
            raise RuntimeError("the WebSocket gateway's process did not take the fault plan")

    def stop(self) -> None:
        """Close every socket, waiting for their $disconnect invocations, then end the child; idempotent."""
        if self._process is None:
            return
        if self._reader is not None:
            with contextlib.suppress(OSError):  # the child is gone already
                self._send(("stop",))
                self._stopped.wait(STOP_SECONDS)
        if self._reader is not None:
            self._reader.join(STOP_SECONDS)
            self._reader = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    # --- the channel ---------------------------------------------------------------------------------
    def _send(self, message: tuple[Any, ...]) -> None:
        conn = self._conn
        if conn is None:
            raise OSError("the WebSocket gateway's process is not running")
        with self._send_lock:
            conn.send(message)

    def _read(self) -> None:
        assert self._conn is not None
        try:
            while True:
                message = self._conn.recv()
                if message[0] == "invoke":
                    self._invoke(*message[1:])
                elif message[0] == "cancel":
                    running = self._running.pop(message[1], None)
                    if running is not None:
                        running.cancel()
                elif message[0] == "faults_set":
                    self._faults_set.set()
                elif message[0] == "stopped":
                    return
        except (EOFError, OSError):
            return  # the child died (stack.failure() tells) or stop() closed the channel
        finally:
            self._stopped.set()

    def _invoke(self, call_id: int, route: str, function_name: str, event: dict[str, Any], throttle: bool) -> None:
        pool = self._pools.get(route)
        if pool is None:
            self._reply(("raised", call_id, "error", function_name, f"no function serves {route}"))
            return
        context = LambdaContext(function_name, memory_limit_in_mb=pool.memory_mb, timeout_seconds=pool.timeout_seconds)
        try:
            future = pool.submit(event, context, throttle=throttle)
        except Throttled as exc:
            self._reply(("raised", call_id, "throttled", exc.function, str(exc)))
            return
        except RuntimeError as exc:  # the function is stopping
            self._reply(("raised", call_id, "error", function_name, str(exc)))
            return
        self._running[call_id] = future
        future.add_done_callback(lambda done: self._finished(call_id, done))

    def _finished(self, call_id: int, future: concurrent.futures.Future[Any]) -> None:
        self._running.pop(call_id, None)
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            try:
                self._reply(("done", call_id, future.result()))  # pickled before a byte is written
            except Exception:  # noqa: BLE001 - a result pickle cannot carry: API Gateway cannot read it either
                self._reply(("done", call_id, repr(future.result())))
        elif isinstance(error, FunctionTimedOut):
            self._reply(("raised", call_id, "timed_out", error.function, str(error)))
        else:
            text = "".join(traceback.format_exception(error))
            self._reply(("raised", call_id, "error", "", text))

    def _reply(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):  # the child is gone: nobody waits for this answer
            self._send(message)


class RemoteError(Exception):
    """A route's handler raised in the dev stack's process (the text is its traceback there)."""


class _Caller:
    """The child's side of the channel: each route of the gateway, invoked in the parent's environments."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, concurrent.futures.Future[Any]] = {}

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.send(message)

    def route(self, route_key: str) -> _RemoteRoute:
        return _RemoteRoute(self, route_key)

    async def invoke(self, route: str, function_name: str, event: dict[str, Any], throttle: bool) -> Any:
        call_id = next(self._ids)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._waiting[call_id] = future
        self.send(("invoke", call_id, route, function_name, event, throttle))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # The gateway gave up (the integration timeout): a still-queued invocation is dropped there too.
            self._waiting.pop(call_id, None)
            self.send(("cancel", call_id))
            raise

    def answer(self, message: tuple[Any, ...]) -> None:
        future = self._waiting.pop(message[1], None)
        if future is None or future.cancelled():
            return
        if message[0] == "done":
            future.set_result(message[2])
            return
        kind, function, text = message[2], message[3], message[4]
        if kind == "throttled":
            future.set_exception(Throttled(function))
        elif kind == "timed_out":
            future.set_exception(FunctionTimedOut(function, 0.0))
        else:
            future.set_exception(RemoteError(text))

    def fail_all(self, text: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(RemoteError(text))


class _RemoteRoute:
    """What the gateway takes for a route's FunctionPool: `invoke_async` runs it in the parent."""

    def __init__(self, caller: _Caller, route_key: str) -> None:
        self._caller = caller
        self.route_key = route_key

    async def invoke_async(self, event: dict[str, Any], context: Any = None, *, throttle: bool = True) -> Any:
        name = getattr(context, "function_name", self.route_key)
        return await self._caller.invoke(self.route_key, name, event, throttle)


def main(argv: list[str] | None = None) -> int:
    """The child: serve one gateway until the parent says stop (or goes away)."""
    from devstack.ws_gateway import WebSocketGateway

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    conn = Connection(args.fd)
    caller = _Caller(conn)
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return 0  # the dev stack stopped (or failed to start) before it asked for a gateway
    options: dict[str, Any] = message[1]
    routes = ("$connect", "$default", "$disconnect")
    gateway = WebSocketGateway({route: caller.route(route) for route in routes}, **options)
    try:
        gateway.start()
    except Exception as exc:  # noqa: BLE001 - told to the parent, which raises it
        caller.send(("failed", f"{type(exc).__name__}: {exc}"))
        return 1
    caller.send(("ready", gateway.url, gateway.management_endpoint))
    stop = threading.Event()
    threading.Thread(target=_read, args=(conn, caller, stop), name="ws-gateway-answers", daemon=True).start()
    stop.wait()
    gateway.stop()
    with contextlib.suppress(OSError):
        caller.send(("stopped",))
    return 0


def _read(conn: Connection, caller: _Caller, stop: threading.Event) -> None:
    from devstack import faults

    try:
        while True:
            message = conn.recv()
            if message[0] in ("done", "raised"):
                caller.answer(message)
            elif message[0] == "faults":
                os.environ[faults.ENV_VAR] = message[1]
                caller.send(("faults_set",))
            elif message[0] == "stop":
                stop.set()
    except (EOFError, OSError):
        caller.fail_all("the dev stack's process is gone")
        if not stop.is_set():
            # The dev stack died without asking: no function can run a $disconnect any more, so the sockets
            # close with the process (clients see 1006) rather than each logging a failed $disconnect.
            os._exit(0)
        stop.set()


if __name__ == "__main__":
    sys.exit(main())
