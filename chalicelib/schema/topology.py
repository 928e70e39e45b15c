"""How the functions are wired: queues, topic subscriptions and event sources.

The one description that infra/ (CDK) and the dev stack both read, so local and AWS cannot drift.
Handler names are the names of the `@app.lambda_function` handlers in app.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chalicelib.schema.messages import LIVE_STOCK_EVENTS, NOTIFY_EVENTS, PAYMENT_EVENTS, EventType
from chalicelib.schema.models import STREAM_MODELS

# Receives before a message goes to its queue's DLQ: with chalicelib.schema.retries' backoff, about half an
# hour of retries, so an outage of minutes sends nothing to a DLQ.
MAX_RECEIVES = 10


@dataclass(frozen=True)
class QueueSpec:
    name: str
    visibility_timeout: int = 30
    max_receive_count: int = MAX_RECEIVES
    # Event types the queue receives from the events topic (an SNS filter policy); empty = none. Plain
    # wire names (EventType values): CDK's jsii would read an enum member as one of its own enums.
    event_types: tuple[str, ...] = ()

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


@dataclass(frozen=True)
class QueueSource:
    queue: str
    handler: str
    batch_size: int = 10
    # Lambda's MaximumBatchingWindowInSeconds: wait up to this long (whole seconds) for a fuller batch.
    # Under load batches fill at once; a trickle waits, so latency-bound consumers keep 0.
    batching_window_s: int = 0
    # The event source mapping's MaximumConcurrency: batches of this queue handled at once (AWS: 2..1000;
    # without it Lambda scales up to the function's concurrency). The dev stack's pumps run as many.
    max_concurrency: int = 2


@dataclass(frozen=True)
class StreamSource:
    table: str
    handler: str
    batch_size: int = 100
    batching_window_s: int = 0


# Stream event source mappings retry a failed batch this many times, bisecting it
# (BisectBatchOnFunctionError), then hand its metadata to the on-failure destination.
STREAM_MAX_RETRIES = 10

EVENTS_TOPIC = "events"
SCHEDULER_GROUP = "drops"


class Fn:
    """The Lambda functions, named once: app.py names its handlers with these, and chalicelib.schema.functions
    sizes and grants each (plain strings: CDK's jsii would read an enum member as one of its own)."""

    API = "api"  # every REST route
    DOMAIN_EVENTS = "domain_events"
    PAYMENTS = "payments"
    FANOUT = "fanout"
    DELIVER = "deliver"
    LIVE_STOCK = "live_stock"
    DROP_LIFECYCLE = "drop_lifecycle"
    SWEEPER = "sweeper"
    ADMISSIONS = "admissions"
    LINE_SLICES = "line_slices"
    # Chalice names an @app.on_ws_* function by its Python name.
    WS_CONNECT = "ws_connect"
    WS_MESSAGE = "ws_message"
    WS_DISCONNECT = "ws_disconnect"


def _wire(types: tuple[EventType, ...]) -> tuple[str, ...]:
    return tuple(t.value for t in types)


NOTIFY_EVENT_TYPES = _wire(NOTIFY_EVENTS)
PAYMENT_EVENT_TYPES = _wire(PAYMENT_EVENTS)
LIVE_STOCK_EVENT_TYPES = _wire(LIVE_STOCK_EVENTS)

# The drop the payments consumer is sized for (docs/capacity.md): the seed's 150 orders/s, charged at
# twice Stripe's typical 300 ms, each batch charging up to PARALLEL_CHARGES orders side by side
# (chalicelib.delivery.payments). Stripe's default live-mode limit is about 100 requests/s: raise it with
# Stripe, and these figures here, before a bigger drop.
PEAK_ORDERS_PER_SECOND = 150
CHARGE_LATENCY_S = 0.6
PARALLEL_CHARGES = 10
# Batches in flight x charges per batch >= peak orders/s x charge latency.
PAYMENTS_CONCURRENCY = math.ceil(PEAK_ORDERS_PER_SECOND * CHARGE_LATENCY_S / PARALLEL_CHARGES)

# The queues, named once: code sends to and consumes from these specs, never a name of its own.
# Visibility timeouts are six times the consuming function's timeout (chalicelib.schema.functions), as AWS advises:
# a batch Lambda retries after a throttle must not become visible, and be handled, twice meanwhile.
NOTIFY = QueueSpec("notify", visibility_timeout=120, event_types=NOTIFY_EVENT_TYPES)
PAYMENTS = QueueSpec("payments", visibility_timeout=180, event_types=PAYMENT_EVENT_TYPES)
DELIVER = QueueSpec("deliver", visibility_timeout=120)
# Slices of work on a queue or draw line (chalicelib.delivery.line_slices): placing it at the start, closing a draw.
LINES = QueueSpec("lines", visibility_timeout=360)
# Live stock on a queue of its own: a rush's stock changes never queue ahead of order_confirmed or
# drop_started. It also carries its own deferred pushes and the slices of a large audience.
LIVE_STOCK = QueueSpec("live_stock", visibility_timeout=120, event_types=LIVE_STOCK_EVENT_TYPES)
# The slices of a big audience's push of a drop event (chalicelib.delivery.notifications.push_in_slices),
# one to a batch: each slice is an invocation of its own, side by side. On the notify queue, ten slices
# came in one batch and one invocation posted them with one set of posting threads.
PUSH_SLICES = QueueSpec("push_slices", visibility_timeout=120)
QUEUES: tuple[QueueSpec, ...] = (NOTIFY, PUSH_SLICES, PAYMENTS, DELIVER, LIVE_STOCK, LINES)
QUEUE_SOURCES: tuple[QueueSource, ...] = (
    # Pushes people wait for: no window.
    QueueSource(NOTIFY.name, Fn.FANOUT, max_concurrency=20),
    # A slice of drop_started for each invocation: as many at once as the fanout function may run.
    QueueSource(PUSH_SLICES.name, Fn.FANOUT, batch_size=1, max_concurrency=20),
    # Coalesced anyway: no window either, so the newest stock shows within the coalescing window.
    QueueSource(LIVE_STOCK.name, Fn.LIVE_STOCK, max_concurrency=20),
    # A payment takes seconds at a real provider anyway; a fuller batch is read in one BatchGetItem.
    QueueSource(PAYMENTS.name, Fn.PAYMENTS, batching_window_s=1, max_concurrency=PAYMENTS_CONCURRENCY),
    # Inbox slices are delayed on purpose already.
    QueueSource(DELIVER.name, Fn.DELIVER, batching_window_s=1, max_concurrency=50),
    # A message is a slice that takes most of an invocation: one at a time (so the window never waits);
    # a few lines of different drops at once.
    QueueSource(LINES.name, Fn.LINE_SLICES, batch_size=1, batching_window_s=1, max_concurrency=2),
)
# The tables whose changes are domain events (chalicelib.schema.models), named by their models.
STREAM_SOURCES: tuple[StreamSource, ...] = tuple(
    StreamSource(m.Meta.table, Fn.DOMAIN_EVENTS)  # type: ignore[attr-defined]
    for m in STREAM_MODELS
)


def queue_spec(name: str) -> QueueSpec:
    """The QueueSpec called `name`."""
    for spec in QUEUES:
        if spec.name == name:
            return spec
    raise KeyError(name)
