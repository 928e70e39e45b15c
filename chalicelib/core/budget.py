"""An invocation's time: work in steps, each started only while the time left holds it.

A function that does an unknown amount of work (a line's slice, a batch of deliveries) stops before its
timeout rather than be killed in the middle: it measures its steps and starts another only while the
time left holds the longest one of its kind so far; what it did not start goes back on its queue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def deadline_of(context: Any, budget_s: float) -> float:
    """A monotonic deadline: `budget_s` from now, or half the invocation's remaining time if less."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        budget_s = min(budget_s, remaining() / 2000)
    return time.monotonic() + budget_s


class Budget:
    """Steps until a deadline: after the first step, a step starts only while the time left holds it, as
    long as the longest step of its kind so far (work that began late stops early rather than run past
    its function's timeout)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.longest: dict[str, float] = {}

    def room(self, *kinds: str) -> bool:
        """Whether steps of `kinds` fit in the time left (they count once one was made)."""
        if not self.longest:
            return True
        return time.monotonic() + sum(self.longest.get(kind, 0.0) for kind in kinds) < self.deadline

    @contextmanager
    def step(self, kind: str) -> Iterator[None]:
        began = time.monotonic()
        yield
        self.longest[kind] = max(self.longest.get(kind, 0.0), time.monotonic() - began)
