"""Powertools logger, metrics and tracer shared by every handler (namespace LiveDrop, EMF to stdout).

The tracer patches botocore, so in AWS (active tracing) every DynamoDB, SNS, SQS and @connections call
is an X-Ray subsegment; outside Lambda, or with POWERTOOLS_TRACE_DISABLED, it records nothing.

The X-Ray SDK is a third of the app's import time, so the tracer is built when an invocation first
traces (before that invocation builds any client, so every call is still patched), and never where
tracing is off: there the SDK is not imported at all.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="livedrop")
metrics = Metrics(namespace="LiveDrop", service="livedrop")


class _LazyTracer:
    """Powertools' Tracer, built on first use (`tracer.provider`, `tracer.capture_method`, ...)."""

    def __init__(self) -> None:
        self._tracer: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The Tracer (built now if it was not)."""
        if self._tracer is None:
            with self._lock:
                if self._tracer is None:
                    from aws_lambda_powertools import Tracer

                    self._tracer = Tracer(service="livedrop", patch_modules=["botocore"])
        return self._tracer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


tracer = _LazyTracer()


def tracing_disabled() -> bool:
    """Powertools' own rule: POWERTOOLS_TRACE_DISABLED, or not in Lambda, or in SAM/Chalice local."""
    from aws_lambda_powertools.tracing.tracer import Tracer

    return bool(Tracer._is_tracer_disabled())


def trace_segment(name: str) -> Any:
    """A subsegment around an invocation, or nothing where tracing is off."""
    if tracing_disabled():
        return contextlib.nullcontext()
    return tracer.provider.in_subsegment(name)


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add to a metric that the next flush emits (flushed once per invocation by app.py)."""
    metrics.add_metric(name=name, unit=unit, value=value)


def observe(event: Any, get_response: Any) -> Any:
    """The middleware of every invocation (app.py registers it): a correlation id on each log line, a
    trace subsegment, its metrics flushed as EMF."""
    logger.set_correlation_id(_correlation_id(event))
    try:
        with trace_segment(f"## {type(event).__name__}"):
            return get_response(event)
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()  # EMF on stdout, unless POWERTOOLS_METRICS_DISABLED (the dev stack)
            metrics.clear_metrics()


def _correlation_id(event: Any) -> str | None:
    context = getattr(event, "context", None)
    if isinstance(context, dict):  # REST (API Gateway's request id) and WebSocket events
        return context.get("requestId")
    return getattr(context, "aws_request_id", None)  # queues, streams, schedules
