"""EventBridge Scheduler -> its targets: moto stores one-time schedules and never fires them; this does."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from devstack.identity import aws_client
from devstack.pollers.base import Handler, Pump, backoff, invoke

logger = logging.getLogger(__name__)

_AT = re.compile(r"^\s*at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)\s*$")


def at_time(expression: str, timezone: str | None = None) -> float | None:
    """Epoch seconds of an `at(yyyy-mm-ddThh:mm:ss)` expression in `timezone` (UTC by default); None if not at()."""
    match = _AT.match(expression or "")
    if not match:
        return None
    naive = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    return naive.replace(tzinfo=ZoneInfo(timezone or "UTC")).timestamp()


@dataclass
class _Schedule:
    name: str
    modified: Any
    due: float | None = None
    target_arn: str = ""
    input: str | None = None
    delete_after: bool = False
    max_retries: int = 0
    attempts: int = 0
    fired: bool = False


class SchedulePump(Pump):
    """Fires the one-time `at()` schedules of an EventBridge Scheduler group (moto stores them, never fires).

    Lists the group every `poll_interval` seconds, reads each new or modified schedule, and at its
    time (minus `early_fire_seconds`) calls `resolve_target(target_arn)(input_json, context)`: the
    event is exactly the Target's Input parsed as JSON, as Scheduler delivers it. Afterwards the
    schedule is deleted when ActionAfterCompletion is DELETE, else remembered as fired (an update
    that changes LastModificationDate re-arms it). A handler exception is retried with a short
    backoff up to min(RetryPolicy.MaximumRetryAttempts, max_retries) times, then dropped with a log
    line (AWS would retry for up to 24 h, then use the target's DLQ). DISABLED schedules never fire;
    an `at()` already past fires at once. rate()/cron() expressions are not fired.
    """

    def __init__(
        self,
        endpoint: str,
        group_name: str,
        resolve_target: Callable[[str], Handler],
        poll_interval: float = 0.2,
        early_fire_seconds: float = 0.0,
        *,
        max_retries: int = 3,
        retry_backoff: float = 0.2,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"schedules:{group_name}")
        self.group_name = group_name
        self.resolve_target = resolve_target
        self.poll_interval = poll_interval
        self.early_fire_seconds = early_fire_seconds
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self._scheduler = aws_client("scheduler", endpoint)
        self._schedules: dict[str, _Schedule] = {}
        self._next_list = 0.0

    def _setup(self) -> None:
        self._scheduler.get_schedule_group(Name=self.group_name)

    def _poll_once(self) -> float:
        if time.monotonic() >= self._next_list:
            self._refresh()
            self._next_list = time.monotonic() + self.poll_interval
        for schedule in sorted(self._due_now(), key=lambda s: s.due or 0.0):
            if self._stop_event.is_set():
                break
            # Each firing is its own Lambda invocation in AWS: a target that waits (the drop
            # lifecycle waits for the exact start second) must not hold back the other schedules.
            schedule.due = None
            threading.Thread(target=self._fire, args=(schedule,), name=f"fire-{schedule.name}", daemon=True).start()
        # Sleep until the next listing or the next due time, whichever is first, so firing is on time.
        wait = self._next_list - time.monotonic()
        upcoming = [s.due - self.early_fire_seconds for s in self._schedules.values() if s.due is not None]
        if upcoming:
            wait = min(wait, min(upcoming) - time.time())
        return max(wait, 0.0)

    def _due_now(self) -> list[_Schedule]:
        now = time.time()
        return [s for s in self._schedules.values() if s.due is not None and now >= s.due - self.early_fire_seconds]

    def _refresh(self) -> None:
        seen: set[str] = set()
        for page in self._scheduler.get_paginator("list_schedules").paginate(GroupName=self.group_name):
            for summary in page.get("Schedules", []):
                name = summary["Name"]
                seen.add(name)
                modified = summary.get("LastModificationDate")
                known = self._schedules.get(name)
                if known is not None and known.modified == modified:
                    continue
                self._schedules[name] = self._load(name, modified)
        for name in set(self._schedules) - seen:
            del self._schedules[name]

    def _load(self, name: str, modified: Any) -> _Schedule:
        entry = _Schedule(name, modified)
        try:
            detail = self._scheduler.get_schedule(Name=name, GroupName=self.group_name)
        except self._scheduler.exceptions.ResourceNotFoundException:
            return entry
        if detail.get("State", "ENABLED") == "DISABLED":
            return entry
        expression = detail.get("ScheduleExpression", "")
        try:
            due = at_time(expression, detail.get("ScheduleExpressionTimezone"))
        except (ValueError, KeyError) as error:
            logger.error("pump %s: schedule %s has a bad expression %r: %s", self.name, name, expression, error)
            return entry
        if due is None:
            logger.warning("pump %s: schedule %s: only at() is fired locally, not %r", self.name, name, expression)
            return entry
        target = detail.get("Target", {})
        allowed = target.get("RetryPolicy", {}).get("MaximumRetryAttempts", self.max_retries)
        entry.due = due
        entry.target_arn = target.get("Arn", "")
        entry.input = target.get("Input")
        entry.delete_after = detail.get("ActionAfterCompletion") == "DELETE"
        # moto fills in AWS's default of 185 retries when none is given: cap it for a dev loop.
        entry.max_retries = max(0, min(int(allowed), self.max_retries))
        return entry

    def _fire(self, schedule: _Schedule) -> None:
        try:
            event = json.loads(schedule.input) if schedule.input else {}
            handler = self.resolve_target(schedule.target_arn)
            function_name = schedule.target_arn.rsplit(":", 1)[-1] or schedule.name
        except Exception:
            logger.exception(
                "pump %s: schedule %s: cannot resolve target %s", self.name, schedule.name, schedule.target_arn
            )
            self._complete(schedule)
            return
        try:
            invoke(handler, event, function_name)
        except Exception:
            schedule.attempts += 1
            if schedule.attempts <= schedule.max_retries:
                logger.exception("pump %s: schedule %s failed, retry %d", self.name, schedule.name, schedule.attempts)
                schedule.due = time.time() + backoff(schedule.attempts, self.retry_backoff)
                return
            logger.exception(
                "pump %s: schedule %s dropped after %d retries", self.name, schedule.name, schedule.max_retries
            )
        self._complete(schedule)

    def _complete(self, schedule: _Schedule) -> None:
        schedule.due = None
        schedule.fired = True
        if schedule.delete_after:
            # Someone may have deleted it meanwhile: the outcome is the same.
            with contextlib.suppress(self._scheduler.exceptions.ResourceNotFoundException):
                self._scheduler.delete_schedule(Name=schedule.name, GroupName=self.group_name)
