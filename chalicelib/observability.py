"""Powertools logger, metrics and tracer shared by every handler (namespace LiveDrop, EMF to stdout).

The tracer patches botocore, so in AWS (active tracing) every DynamoDB, SNS, SQS and @connections call
is an X-Ray subsegment; outside Lambda, or with POWERTOOLS_TRACE_DISABLED, it records nothing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="livedrop")
metrics = Metrics(namespace="LiveDrop", service="livedrop")
tracer = Tracer(service="livedrop", patch_modules=["botocore"])


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add to a metric that the next flush emits (flushed once per invocation by app.py)."""
    metrics.add_metric(name=name, unit=unit, value=value)
