"""What Lambda gives a handler, for handlers the dev stack invokes in-process.

Besides the context object, what belongs to one execution environment (devstack.environments) lives
here: the environment a piece of code runs in (a context variable that threads started inside a
handler inherit, with the function's IAM identity, as threads inside a Lambda environment act as
its function), whether that environment was discarded (a timed-out invocation: every later AWS call
from it is refused, so nothing it still does reaches AWS), and its own temporary folder.
"""

from __future__ import annotations

import contextvars
import ctypes
import functools
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalice import Chalice

from devstack.identity import function_arn


class LambdaContext:
    """The context object Lambda passes to a Python handler (the attributes Powertools and Chalice read)."""

    def __init__(
        self,
        function_name: str,
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 60.0,
        aws_request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn(function_name)
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation would time out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _PerThread:
    """A data descriptor that keeps one value per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return getattr(self._local, "value", None)

    def __set__(self, obj: Any, value: Any) -> None:
        self._local.value = value


class ConcurrentChalice(Chalice):
    """Chalice keeps the current request on the app object, which is safe in Lambda (one event per
    container at a time) but not in the dev stack, which serves many requests at once in one
    process: here that state is kept per thread."""

    current_request = _PerThread()
    lambda_context = _PerThread()


def serve_concurrently(app: Chalice) -> Chalice:
    """Make `app` safe to call from many threads at once (see ConcurrentChalice)."""
    if not isinstance(app, ConcurrentChalice):
        app.__dict__.pop("current_request", None)
        app.__dict__.pop("lambda_context", None)
        # A subclass of the app's own class, so what that class adds (its settings-driven debug flag) stays.
        app.__class__ = type(f"Concurrent{type(app).__name__}", (ConcurrentChalice, type(app)), {})
    return app


def pools_per_environment(threads_module: Any) -> None:
    """Make the SharedPool of a function's copy of chalicelib.core.threads keep a pool per execution
    environment: the environments of a function share one copy of the app (devstack.app_copies), so
    without this every concurrent invocation of, say, fanout would post through one pusher pool, where in
    Lambda each posts through its own. Code outside the environments keeps the shared pool."""
    shared = threads_module.SharedPool
    outside = shared.get

    def get(self: Any) -> ThreadPoolExecutor:
        sandbox = _sandbox.get()
        if sandbox is None:
            return outside(self)
        return sandbox.pool(id(self), self.workers, self.name)

    shared.get = get


class EnvironmentDiscarded(BaseException):
    """Raised inside code of an execution environment that Lambda discarded (its invocation timed out).

    A BaseException, so a handler's `except Exception` does not keep a stopped invocation going."""


class Sandbox:
    """What one execution environment owns: its name, whether it is discarded, its /tmp and its copy of
    the function's code (devstack.app_copies: its own module globals), once imported."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.discarded = False
        self.code: Any = None
        self._tmp: str | None = None
        self._lock = threading.Lock()
        # The thread pools the app keeps in module globals (chalicelib.core.threads.SharedPool), this
        # environment's own: in Lambda each environment is a process with its own module globals.
        self._pools: dict[int, ThreadPoolExecutor] = {}

    @property
    def tmp(self) -> str:
        """This environment's temporary folder (what tempfile.gettempdir() answers inside it)."""
        with self._lock:
            if self._tmp is None:
                self._tmp = tempfile.mkdtemp(prefix=f"livedrop-{self.label}-", dir=_original_gettempdir())
            return self._tmp

    def discard(self) -> None:
        """From now on every AWS call from this environment is refused; its /tmp and pools are removed."""
        self.discarded = True
        self.release()

    def pool(self, key: int, workers: int, name: str) -> ThreadPoolExecutor:
        """This environment's thread pool `key` (made on first use with `workers` threads called `name`)."""
        with self._lock:
            found = self._pools.get(key)
            if found is None:
                found = self._pools[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
            return found

    def release(self) -> None:
        """Remove this environment's /tmp (made again if it is used again) and end its pools' threads."""
        with self._lock:
            tmp, self._tmp = self._tmp, None
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


_sandbox: contextvars.ContextVar[Sandbox | None] = contextvars.ContextVar("livedrop_sandbox", default=None)


def current_sandbox() -> Sandbox | None:
    """The execution environment the calling code runs in (None outside the functions)."""
    return _sandbox.get()


def enter_sandbox(sandbox: Sandbox) -> None:
    """Make the calling thread (and the threads it starts from now on) part of `sandbox`."""
    _sandbox.set(sandbox)


def refuse_if_discarded() -> None:
    """Raise EnvironmentDiscarded when the calling code belongs to a discarded environment."""
    sandbox = _sandbox.get()
    if sandbox is not None and sandbox.discarded:
        raise EnvironmentDiscarded(f"execution environment {sandbox.label} was discarded (its invocation timed out)")


def interrupt(thread: threading.Thread) -> None:
    """Raise EnvironmentDiscarded in `thread` at its next Python instruction (a call blocked in C
    finishes first; what it does after that is refused by refuse_if_discarded)."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(EnvironmentDiscarded))


def where(thread: threading.Thread) -> str | None:
    """Where `thread` is now, for a timeout's log: its last frames of the project's own code, and the
    library call it is in (None if it has ended)."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return None
    stack = traceback.extract_stack(frame)
    mine = [f for f in stack[:-3] if "site-packages" not in f.filename and "/lib/python3" not in f.filename]
    return "".join(traceback.format_list(mine[-8:] + stack[-3:])).rstrip()


_original_gettempdir = tempfile.gettempdir
_original_start = threading.Thread.start
_installed = False


def _gettempdir() -> str:
    sandbox = _sandbox.get()
    return sandbox.tmp if sandbox is not None else _original_gettempdir()


@functools.wraps(_original_start)
def _start(self: threading.Thread) -> None:
    # A thread started inside a function runs in the starter's context: its environment and whose
    # AWS calls these are (devstack.iam), as every thread inside a Lambda environment does.
    if _sandbox.get() is not None and not getattr(self, "_livedrop_context", None):
        context = contextvars.copy_context()
        run = self.run
        self._livedrop_context = context  # type: ignore[attr-defined]
        self.run = lambda: context.run(run)  # type: ignore[method-assign]
    _original_start(self)


def install() -> None:
    """Process-wide, idempotent: threads inherit their starter's environment; tempfile answers its /tmp."""
    global _installed
    if _installed:
        return
    _installed = True
    threading.Thread.start = _start  # type: ignore[method-assign]
    # tempfile's own functions (mkstemp, TemporaryDirectory, ...) look gettempdir up at each call.
    tempfile.gettempdir = _gettempdir


# Overrides of the functions' concurrency limits (devstack.environments), e.g. `api=32,payments=2`.
CONCURRENCY_ENV = "LIVEDROP_DEV_CONCURRENCY"


def concurrency_from_env(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """Overrides of the concurrency limits from LIVEDROP_DEV_CONCURRENCY, e.g. `api=32,payments=2`."""
    text = (environ if environ is not None else os.environ).get(CONCURRENCY_ENV, "")
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{CONCURRENCY_ENV}: expected name=positive integer, got {part!r}")
        limits[name.strip()] = int(value)
    return limits
