"""The names this module used to define, now in devstack.pollers (one module per event source),
devstack.lambda_events (the events) and devstack.identity (the fake AWS identity and its clients).

Kept so imports written before the split still work; new code imports from those modules.
"""

from devstack.identity import ACCOUNT_ID, REGION, aws_client
from devstack.lambda_events.dynamodb import stream_record
from devstack.lambda_events.sqs import sqs_record
from devstack.lambda_runtime import LambdaContext
from devstack.pollers import (
    Handler,
    PeriodicPump,
    Pump,
    PumpSet,
    QueuePump,
    SchedulePump,
    StreamPump,
    at_time,
    handler_name,
    invoke,
    start_all,
    stop_all,
)

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "Handler",
    "LambdaContext",
    "PeriodicPump",
    "Pump",
    "PumpSet",
    "QueuePump",
    "SchedulePump",
    "StreamPump",
    "aws_client",
    "at_time",
    "handler_name",
    "invoke",
    "sqs_record",
    "start_all",
    "stop_all",
    "stream_record",
]
