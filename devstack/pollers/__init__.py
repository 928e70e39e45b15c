"""Event-source pollers: what Lambda's event source mappings, EventBridge and its Scheduler do, for the dev stack.

One module per event source, as moto and LocalStack lay theirs out:

- `streams.StreamPump`: a DynamoDB stream -> batches of stream records (retries, ReportBatchItemFailures);
- `queues.QueuePump`: an SQS queue -> batches of messages (partial batch responses; redrive is moto's);
- `scheduler.SchedulePump`: one-time `at()` schedules of a Scheduler group -> their target with the Input JSON;
- `periodic.PeriodicPump`: a `rate(...)` EventBridge rule -> a scheduled event.

`batch` reads the partial batch responses for both batch sources; `base` holds the poller thread and
`PumpSet`. The events themselves are built by devstack.lambda_events.
"""

from devstack.pollers.base import Handler, Pump, PumpSet, handler_name, invoke, start_all, stop_all
from devstack.pollers.periodic import PeriodicPump
from devstack.pollers.queues import QueuePump
from devstack.pollers.scheduler import SchedulePump, at_time
from devstack.pollers.streams import StreamPump

__all__ = [
    "Handler",
    "PeriodicPump",
    "Pump",
    "PumpSet",
    "QueuePump",
    "SchedulePump",
    "StreamPump",
    "at_time",
    "handler_name",
    "invoke",
    "start_all",
    "stop_all",
]
