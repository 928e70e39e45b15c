"""Lambda's execution environments, for the dev stack: each function runs in a pool of warm environments.

An environment is a worker thread of its own. It initialises once (the function's `init` hook: clients,
caches; the time is logged as Lambda's `Init Duration`), then serves one invocation at a time and is
reused for the next. A pool creates a new environment only when an invocation arrives and none is free,
and never more than the function's concurrency limit (Lambda's reserved concurrency). Invocations that
find every environment busy wait in a bounded queue; a synchronous caller (the gateways) that finds the
queue full too is throttled (`Throttled`, which the gateways answer with 429 as API Gateway does).
Event sources (pumps) and `$disconnect` are never throttled: Lambda's pollers and asynchronous
invocations wait and retry, so their invocations only wait in the queue.

Each invocation runs with the function's timeout and memory (its context says so, whoever invokes it). A
watchdog stops an invocation past its timeout as Lambda does: `Task timed out after N.NN seconds` is
logged, the invoker gets FunctionTimedOut (a TimeoutError) at once, and the environment is discarded.
A thread cannot be killed, so discarding it (devstack.lambda_runtime) raises EnvironmentDiscarded in
the environment's thread at its next Python instruction and refuses every AWS call made from the
environment from then on, its own threads' included: nothing a timed-out invocation still does
reaches AWS. A new environment takes its place. Each environment has its own temporary folder
(tempfile.gettempdir()), removed when it is discarded, and threads a handler starts act as its
function (IAM included). Given `code`, the function's environments run their own copy of the code,
imported at the first one's init (devstack.app_copies: module globals per function, never another
function's); the environment that replaces one discarded after a timeout imports it afresh.

Clients and connections are independent: whoever calls a pool (a gateway connection, a pump) never
pays an init unless the pool has to grow, and a thread-local client built inside an invocation lives
as long as its environment, as in Lambda.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.schema.functions import ACCESS, FALLBACK_DEV_CONCURRENCY
from devstack import heap
from devstack.lambda_runtime import (
    EnvironmentDiscarded,
    LambdaContext,
    Sandbox,
    current_sandbox,
    enter_sandbox,
    install,
    interrupt,
    where,
)

logger = logging.getLogger("devstack.lambda")

Handler = Callable[[dict[str, Any], Any], Any]

# The dev stack's default concurrency limit per function (Lambda's reserved concurrency): the function
# table's `dev_concurrency` (chalicelib.schema.functions says why each is what it is).
DEFAULT_CONCURRENCY: dict[str, int] = {name: access.dev_concurrency for name, access in ACCESS.items()}
FALLBACK_CONCURRENCY = FALLBACK_DEV_CONCURRENCY
# Invocations that may wait for an environment before a synchronous caller is throttled: the listen
# backlog the threaded gateways had, so only a rush beyond what they accepted is refused.
DEFAULT_QUEUE_SIZE = 1024


_current = threading.local()


def current_function() -> str | None:
    """The name of the function whose environment runs the calling thread (None outside environments)."""
    return getattr(_current, "function", None)


def current_code() -> Any:
    """The calling environment's copy of the function's code (None outside environments or without one);
    threads a handler starts see their environment's."""
    sandbox = current_sandbox()
    return sandbox.code if sandbox is not None else None


class Throttled(Exception):
    """Every environment of the function is busy and its queue is full (Lambda's TooManyRequestsException)."""

    def __init__(self, function: str) -> None:
        super().__init__(f"function {function} is at its concurrency limit and its queue is full")
        self.function = function


@dataclass
class _Job:
    event: dict[str, Any]
    context: Any
    future: concurrent.futures.Future[Any]
    queued_at: float = 0.0


@dataclass
class Environment:
    """One execution environment: its number in the pool, its thread, how long its init took, what it owns
    (its sandbox: /tmp, threads) and the invocation it runs now with that invocation's deadline."""

    index: int
    thread: threading.Thread | None = None
    init_ms: float | None = None
    invocations: int = 0
    sandbox: Sandbox | None = None
    job: _Job | None = None
    request_id: str = ""
    deadline: float = 0.0


class FunctionTimedOut(TimeoutError):
    """The invocation ran past the function's timeout: Lambda stopped it and discarded its environment."""

    def __init__(self, function: str, seconds: float) -> None:
        super().__init__(f"{function}: Task timed out after {seconds:.2f} seconds")
        self.function = function
        self.seconds = seconds


class FunctionPool:
    """The warm execution environments of one function, at most `concurrency` of them.

    Called like a Lambda handler, `pool(event, context)`, it runs the invocation in an environment and
    waits for the result (never throttled: what event sources use). `submit` and `invoke_async` are the
    gateways' synchronous invocations, throttled when the pool and its queue are full.
    """

    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        concurrency: int | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        init: Callable[[], Any] | None = None,
        function_name: str | None = None,
        timeout_seconds: float = 60.0,
        memory_mb: int = 128,
        code: Callable[[], Any] | None = None,
    ) -> None:
        limit = concurrency if concurrency is not None else DEFAULT_CONCURRENCY.get(name, FALLBACK_CONCURRENCY)
        if limit < 1 or queue_size < 0:
            raise ValueError("concurrency must be >= 1 and queue_size >= 0")
        install()  # threads started inside a handler belong to its environment
        self.name = name
        self.handler = handler
        self.concurrency = limit
        self.queue_size = queue_size
        self.function_name = function_name or name
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self._init = init
        self._code = code  # imports a copy of the function's code (its module globals)
        self._current_code: Any = None  # the copy environments started from now on run
        self._code_lock = threading.Lock()  # one import at a time per function
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        # The deadline watchdog waits on the same lock, apart from the environments waiting for work.
        self._watch = threading.Condition(lock)
        # provision() waits on it for environments' inits to end (not on _cond: it would take a wake-up meant
        # for an environment waiting for work).
        self._ready = threading.Condition(lock)
        self._watchdog: threading.Thread | None = None
        self._started = 0
        self._timeouts = 0
        self._pending: deque[_Job] = deque()
        self._environments: list[Environment] = []
        self._idle = 0  # environments waiting for an invocation
        self._initializing = 0  # environments started, not yet waiting
        self._busy = 0
        self._max_busy = 0
        self._inits = 0
        self._invocations = 0
        self._busy_ms = 0.0  # time spent in the handler, summed: what Lambda bills as duration
        self._cpu_ms = 0.0  # the handler thread's CPU time, summed: its part of the duration that load does not inflate
        self._throttles = 0
        self._stopping = False

    # --- invoking ------------------------------------------------------------------------------
    def __call__(self, event: dict[str, Any], context: Any = None) -> Any:
        """Invoke and wait for the result (an event source's invocation: waits, never throttled)."""
        return self.submit(event, context, throttle=False).result()

    def submit(
        self, event: dict[str, Any], context: Any = None, *, throttle: bool = True
    ) -> concurrent.futures.Future[Any]:
        """Queue one invocation; raises Throttled when `throttle` and no environment or queue slot is left."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cond:
            if self._stopping:
                raise RuntimeError(f"function {self.name} is stopped")
            # Jobs already queued take the free environments first.
            waiting = len(self._pending) - self._idle - self._initializing
            if waiting >= 0:
                if len(self._environments) < self.concurrency:
                    self._start_environment()
                elif throttle and waiting >= self.queue_size:
                    self._throttles += 1
                    raise Throttled(self.name)
            self._pending.append(_Job(event, context, future, time.perf_counter()))
            self._cond.notify()
        return future

    async def invoke_async(self, event: dict[str, Any], context: Any = None, *, throttle: bool = True) -> Any:
        """Invoke from an event loop without blocking it; cancelling the await drops a still-queued job."""
        return await asyncio.wrap_future(self.submit(event, context, throttle=throttle))

    # --- the environments ----------------------------------------------------------------------
    def _start_environment(self) -> None:
        self._started += 1
        env = Environment(self._started, sandbox=Sandbox(f"{self.name}-{self._started}"))
        self._environments.append(env)
        self._initializing += 1
        env.thread = threading.Thread(target=self._serve, args=(env,), name=f"lambda-{self.name}-{env.index}")
        env.thread.daemon = True
        env.thread.start()

    def _serve(self, env: Environment) -> None:
        _current.function = self.name
        assert env.sandbox is not None
        enter_sandbox(env.sandbox)
        with contextlib.suppress(EnvironmentDiscarded):  # timed out: the watchdog did the bookkeeping
            self._init_environment(env)
            while self._serve_one(env):
                pass

    def _init_environment(self, env: Environment) -> None:
        started = time.perf_counter()
        try:
            if self._code is not None and env.sandbox is not None:
                env.sandbox.code = self._code_for_new_environment()
            if self._init is not None:
                self._init()
        except Exception:
            # Lambda reports an init error and initialises again on the next invocation; the dev stack
            # logs it and lets the invocation run (its own error then says what is wrong).
            logger.exception("function %s: environment %d failed to initialise", self.name, env.index)
        env.init_ms = (time.perf_counter() - started) * 1000
        heap.settle()  # the code copy and clients just made live as long as the environment
        logger.info(
            "INIT_REPORT Function: %s Environment: %d Init Duration: %.2f ms", self.name, env.index, env.init_ms
        )
        with self._cond:
            self._initializing -= 1
            self._inits += 1
            self._idle += 1
            self._ready.notify_all()

    def _code_for_new_environment(self) -> Any:
        # One copy per function, imported by the first environment's init (or after a timeout): importing
        # per environment would cost every cold start an import of the whole app, serialized. Environments
        # starting together wait for the one import (not under _cond: invocations keep being queued).
        with self._code_lock:
            with self._cond:
                found = self._current_code
            if found is None:
                found = self._code()  # type: ignore[misc]
                with self._cond:
                    self._current_code = found
        return found

    def _serve_one(self, env: Environment) -> bool:
        """Wait for one invocation and run it; False when the environment ends."""
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if not self._pending:  # stopping and nothing left to run
                self._idle -= 1
                return False
            job = self._pending.popleft()
            if not job.future.set_running_or_notify_cancel():
                return True  # its caller gave up while it waited
            self._idle -= 1
            self._busy += 1
            self._max_busy = max(self._max_busy, self._busy)
            self._invocations += 1
            # Lambda's clock starts when the environment takes the invocation, not while it queues.
            context = LambdaContext(
                self.function_name,
                memory_limit_in_mb=self.memory_mb,
                timeout_seconds=self.timeout_seconds,
                aws_request_id=getattr(job.context, "aws_request_id", None) or str(uuid.uuid4()),
            )
            env.job, env.request_id = job, context.aws_request_id
            env.deadline = time.monotonic() + self.timeout_seconds
            self._start_watchdog()
            self._watch.notify()
        env.invocations += 1
        outcome: tuple[bool, Any]
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            outcome = (True, self.handler(job.event, context))
        except EnvironmentDiscarded:
            raise
        except BaseException as error:  # noqa: BLE001 - a Lambda error goes back to the invoker
            outcome = (False, error)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "REPORT Function: %s Environment: %d Duration: %.2f ms Queued: %.2f ms",
                self.name,
                env.index,
                (time.perf_counter() - started) * 1000,
                (started - job.queued_at) * 1000,
            )
        # Free again before the caller hears back, so its next invocation finds this environment.
        with self._cond:
            if env.job is not job:  # timed out meanwhile: the invoker was told, the environment is gone
                return False
            env.job = None
            self._busy_ms += (time.perf_counter() - started) * 1000
            self._cpu_ms += (time.thread_time() - cpu_started) * 1000
            self._busy -= 1
            self._idle += 1
        if outcome[0]:
            job.future.set_result(outcome[1])
        else:
            job.future.set_exception(outcome[1])
        return True

    # --- timeouts ------------------------------------------------------------------------------
    def _start_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch_deadlines, name=f"timeouts-{self.name}", daemon=True)
            self._watchdog.start()

    def _watch_deadlines(self) -> None:
        """Stops every invocation that runs past the function's timeout, as Lambda does."""
        with self._cond:
            while not self._stopping:
                running = [e for e in self._environments if e.job is not None]
                now = time.monotonic()
                late = [e for e in running if e.deadline <= now]
                for env in late:
                    self._time_out(env)
                if not late:
                    self._watch.wait(min((e.deadline - now for e in running), default=None))

    def _discard(self, env: Environment) -> _Job:
        """Refuse whatever `env`'s invocation still does, then stop it; its job (not failed yet). Holds the lock."""
        job, env.job = env.job, None
        assert job is not None and env.sandbox is not None and env.thread is not None
        env.sandbox.discard()
        interrupt(env.thread)
        # What the stopped invocation left in its module globals is not trusted again: the environment
        # that takes its place imports the code afresh (the others keep theirs while they live).
        if env.sandbox.code is self._current_code:
            self._current_code = None
        self._environments.remove(env)
        self._busy -= 1
        return job

    def _time_out(self, env: Environment) -> None:
        """Discard `env` (its invocation is past the timeout) and fail its invocation; holds the lock."""
        stuck_at = where(env.thread) if env.thread is not None else None  # for the log
        job = self._discard(env)
        self._timeouts += 1
        logger.error(
            "%s Task timed out after %.2f seconds (function %s, environment %d discarded)",
            env.request_id,
            self.timeout_seconds,
            self.name,
            env.index,
        )
        if stuck_at is not None:
            logger.warning("%s was at:\n%s", env.request_id, stuck_at)
        job.future.set_exception(FunctionTimedOut(self.name, self.timeout_seconds))
        # The invocations that wait get a new environment in its place.
        if len(self._pending) > self._idle + self._initializing and len(self._environments) < self.concurrency:
            self._start_environment()

    # --- provisioning, observing and stopping -------------------------------------------------------
    def provision(self, count: int, timeout: float = 120.0) -> int:
        """Start environments until `count` (at most the concurrency) are there and wait for their inits, as
        Lambda's provisioned concurrency before a known burst (whose inits would otherwise share this
        process's interpreter with the invocations already running); returns how many are ready."""
        with self._cond:
            while len(self._environments) < min(count, self.concurrency):
                self._start_environment()
            deadline = time.monotonic() + timeout
            while self._initializing and time.monotonic() < deadline:
                self._ready.wait(deadline - time.monotonic())
            return len(self._environments) - self._initializing

    @property
    def environments(self) -> list[Environment]:
        """The environments started so far."""
        with self._cond:
            return list(self._environments)

    def stats(self) -> dict[str, Any]:
        """Counters: environments started (inits), busy and queued now, the most ever busy, throttles."""
        with self._cond:
            return {
                "concurrency": self.concurrency,
                "queue_size": self.queue_size,
                "environments": len(self._environments),
                "inits": self._inits,
                "busy": self._busy,
                "max_busy": self._max_busy,
                "queued": max(0, len(self._pending) - self._idle - self._initializing),
                "invocations": self._invocations,
                "busy_ms": round(self._busy_ms, 2),
                "cpu_ms": round(self._cpu_ms, 2),
                "throttles": self._throttles,
                "timeouts": self._timeouts,
                "timeout_seconds": self.timeout_seconds,
                "memory_mb": self.memory_mb,
                "init_ms": [round(e.init_ms, 2) for e in self._environments if e.init_ms is not None],
            }

    def stop(self, timeout: float = 5.0) -> None:
        """Run what is queued, then end every environment (idempotent); what still runs after `timeout` is
        discarded as after a timeout (nothing it does reaches AWS): a target sleeping holds no Ctrl-C."""
        self.request_stop()
        self.finish_stop(time.monotonic() + timeout)

    def request_stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            self._watch.notify_all()

    def finish_stop(self, deadline: float) -> None:
        """After request_stop: wait until `deadline` for the environments, then discard what still runs."""
        me = threading.current_thread()
        with self._cond:
            threads = [e.thread for e in self._environments if e.thread is not None and e.thread is not me]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            for env in [e for e in self._environments if e.job is not None and e.thread is not me]:
                logger.warning("%s stopped with the dev stack (function %s)", env.request_id, self.name)
                self._discard(env).future.set_exception(RuntimeError(f"function {self.name} stopped while it ran"))
            for job in self._pending:
                job.future.cancel()
            self._pending.clear()
            sandboxes = [e.sandbox for e in self._environments if e.sandbox is not None]
        for sandbox in sandboxes:
            sandbox.release()

    def __repr__(self) -> str:
        return f"FunctionPool({self.name!r}, concurrency={self.concurrency})"
