"""Powertools logger and metrics shared by every handler (namespace LiveDrop, EMF to stdout)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="livedrop")
metrics = Metrics(namespace="LiveDrop", service="livedrop")


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add to a metric that the next flush emits (flushed once per invocation by app.py)."""
    metrics.add_metric(name=name, unit=unit, value=value)
