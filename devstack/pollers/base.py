"""What the pollers share: a daemon thread per poller, Lambda-style invocation, and sets of pollers.

A poller polls the embedded AWS on a daemon thread of its own and calls a Lambda-style handler
`(event, context) -> dict | None` with events shaped exactly like the ones AWS delivers (built by
devstack.lambda_events). A handler exception never kills a poller: it is logged and Lambda's retry
semantics apply.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from devstack.lambda_runtime import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]

logger = logging.getLogger(__name__)


def handler_name(handler: Handler, default: str) -> str:
    """The Lambda function name for `handler`: a Chalice LambdaFunction's name, else the callable's name."""
    name = getattr(handler, "name", None) or getattr(handler, "__name__", None)
    return name if isinstance(name, str) and name and name != "<lambda>" else default


def invoke(handler: Handler, event: dict[str, Any], function_name: str) -> Any:
    """Call `handler` the way Lambda does: the event plus a fresh context."""
    return handler(event, LambdaContext(function_name))


class Pump:
    """Base of the pumps: a daemon thread calling `_poll_once` until stopped; errors are logged, never fatal."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the pump's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Resolve the source (raises if it does not exist) and start polling on a daemon thread."""
        if self._thread is not None:
            raise RuntimeError(f"pump {self.name} already started")
        self._setup()
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=f"pump-{self.name}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop after the current poll (does not wait)."""
        self._stop_event.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and join the thread (a batch being handled is finished first)."""
        self.request_stop()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("pump %s did not stop within %.1fs", self.name, timeout)

    def __enter__(self) -> Pump:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _setup(self) -> None:
        """Look the source up before the thread starts, so a missing resource fails start()."""

    def _poll_once(self) -> float:
        """Do one round of work; return how long to wait before the next one."""
        raise NotImplementedError

    def _run(self) -> None:
        errors = 0
        while not self._stop_event.is_set():
            try:
                delay = self._poll_once()
                errors = 0
            except Exception:
                if self._stop_event.is_set():
                    # Stopping: a poll cut short by the teardown is expected, not worth a traceback.
                    logger.debug("pump %s: poll interrupted by stop", self.name, exc_info=True)
                    return
                # The embedded AWS may be restarting or a resource may have gone: back off, keep going.
                errors += 1
                logger.exception("pump %s: poll failed (%d in a row)", self.name, errors)
                delay = min(0.1 * 2 ** min(errors, 5), 2.0)
            if delay > 0:
                self._stop_event.wait(delay)


def backoff(attempt: int, base: float) -> float:
    """The wait before retry `attempt` (1, 2, ...): doubling from `base`, at most a second."""
    return min(base * 2 ** max(attempt - 1, 0), 1.0)


class PumpSet:
    """Starts and stops a list of pumps together (stop asks them all first, then joins each)."""

    def __init__(self, pumps: Iterable[Pump] = ()) -> None:
        self.pumps: list[Pump] = list(pumps)
        self._running = False

    def add(self, pump: Pump) -> Pump:
        """Add `pump` (started when the set starts, or now if the set is already running)."""
        self.pumps.append(pump)
        if self._running:
            pump.start()
        return pump

    def start(self) -> None:
        """Start every pump; if one fails to start, stop the ones already started and re-raise."""
        started: list[Pump] = []
        try:
            for pump in self.pumps:
                if not pump.running:
                    pump.start()
                    started.append(pump)
        except Exception:
            stop_all(started)
            raise
        self._running = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every pump."""
        self._running = False
        stop_all(self.pumps, timeout)

    def __iter__(self) -> Iterator[Pump]:
        return iter(self.pumps)

    def __len__(self) -> int:
        return len(self.pumps)

    def __enter__(self) -> PumpSet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_all(pumps: Iterable[Pump]) -> PumpSet:
    """Start `pumps` together and return the running PumpSet."""
    pump_set = PumpSet(pumps)
    pump_set.start()
    return pump_set


def stop_all(pumps: Iterable[Pump], timeout: float = 5.0) -> None:
    """Stop `pumps`: ask all to stop first so they wind down in parallel, then join each."""
    pumps = list(pumps)
    for pump in pumps:
        pump.request_stop()
    for pump in pumps:
        pump.stop(timeout)
