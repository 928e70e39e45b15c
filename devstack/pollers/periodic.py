"""EventBridge rules with a rate: a handler invoked on a fixed period (what Chalice's @app.schedule deploys)."""

from __future__ import annotations

import logging
import time

from devstack.lambda_events.scheduled import scheduled_event
from devstack.pollers.base import Handler, Pump, invoke

logger = logging.getLogger(__name__)


class PeriodicPump(Pump):
    """Invokes a handler on a fixed rate with a scheduled event, like an EventBridge rule `rate(...)`
    (what Chalice's @app.schedule deploys)."""

    def __init__(self, handler: Handler, every_seconds: float, function_name: str, *, first_after: float = 5.0) -> None:
        super().__init__(f"rate:{function_name}")
        self.handler = handler
        self.every_seconds = every_seconds
        self.function_name = function_name
        self._next = time.monotonic() + first_after

    def _poll_once(self) -> float:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every_seconds
            event = scheduled_event(self.function_name)
            try:
                invoke(self.handler, event, self.function_name)
            except Exception:
                logger.exception("pump %s: scheduled invocation failed", self.name)
        return max(0.0, self._next - time.monotonic())
