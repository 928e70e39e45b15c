"""Work handed to worker threads keeps the invocation's context (contextvars do not cross threads)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def in_context(work: Callable[P, R]) -> Callable[P, R]:
    """`work` run, in whichever thread calls it, under a copy of the caller's context as it is now.

    What the runtime keeps per invocation in context variables (the dev stack: whose AWS calls
    these are) then follows the records and pushes that a handler spreads over a pool."""
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # One copy per call: a Context may be entered by one thread at a time.
        return context.copy().run(work, *args, **kwargs)

    return run


class SharedPool:
    """A thread pool an environment's invocations share, started on first use (a cold start that never needs
    it starts no thread): `SharedPool(16, "pusher").get().map(...)`."""

    def __init__(self, workers: int, name: str) -> None:
        self.workers = workers
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.name)
        return self._pool
