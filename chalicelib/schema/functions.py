"""The function table: each Lambda function's timeout, memory, concurrency, event sources and grants.

The one table app.py, infra/ (CDK: roles, settings, reserved concurrency) and the dev stack (its pools,
their timeouts and concurrency, IAM enforcement) all read. Keys are the names in chalicelib.schema.topology's
`Fn`: the `name=` of an `@app.lambda_function` / `@app.schedule`, the Python name of an `@app.on_ws_*`
handler, and Fn.API for the REST routes. Grants name tables and indexes through the models
(`table(Drop)`, `index(Drop.by_status)`), so a name that is not a table cannot be written; they render
as logical names ("Drops", "Drops/by_status": the table's name without the stage prefix), and
"Table/index" grants reads on that index only. The queues and streams a function consumes come from
chalicelib.schema.topology (`event_sources`) and are added by the stack, not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.models import Model

from chalicelib.schema.models import (
    ALL_MODELS,
    Admission,
    Connection,
    Creator,
    Drop,
    DropSales,
    Follow,
    IdempotencyKey,
    Line,
    Notification,
    NotificationPreference,
    Order,
    ProcessedEvent,
    Product,
    Purchase,
    RateLimit,
    SigningKey,
    StockShard,
    Subscription,
    User,
    WebPushSubscription,
)
from chalicelib.schema.topology import (
    DELIVER,
    LINES,
    LIVE_STOCK,
    PUSH_SLICES,
    QUEUE_SOURCES,
    STREAM_SOURCES,
    Fn,
    QueueSource,
    StreamSource,
)

API_HANDLER = Fn.API
# The dev stack's concurrency for a function the table does not size (devstack.environments).
FALLBACK_DEV_CONCURRENCY = 4


def table(model: type[Model]) -> str:
    """The logical name of `model`'s table (without the stage prefix)."""
    return str(model.Meta.table)  # type: ignore[attr-defined]


def index(found: Any) -> str:
    """ "Table/index" for a model's index attribute, e.g. index(Drop.by_status) -> "Drops/by_status"."""
    for model in ALL_MODELS:
        if any(candidate is found for candidate in model._indexes.values()):
            return f"{table(model)}/{found.Meta.index_name}"
    raise ValueError(f"{found!r} is not an index of any model")


def event_sources(name: str) -> tuple[QueueSource | StreamSource, ...]:
    """The queues and table streams that invoke function `name` (chalicelib.schema.topology)."""
    sources: tuple[QueueSource | StreamSource, ...] = (*QUEUE_SOURCES, *STREAM_SOURCES)
    return tuple(s for s in sources if s.handler == name)


@dataclass(frozen=True)
class FunctionAccess:
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    # Tables (never indexes) the function may Scan: a read of the whole table, so granted by name.
    scan: tuple[str, ...] = ()
    send: tuple[str, ...] = ()
    publish: bool = False
    # Creates drop schedules in the Scheduler group (and passes the Scheduler role to them).
    schedules: bool = False
    cognito: tuple[str, ...] = ()
    # Posts to / deletes WebSocket connections through the @connections management API.
    ws_push: bool = False
    # Holds the Stripe secrets when the stage's payment provider is stripe.
    payment_secrets: bool = False
    # Sends e-mail through SES from the stage's identity, in its configuration set.
    email: bool = False
    # Reads the stage's VAPID key secret, and makes it the first time (chalicelib.delivery.webpush).
    push_keys: bool = False
    # Signs browser uploads of product images to the images bucket (domain.images): an upload acts
    # with the signer's permission, s3:PutObject under images/.
    images: bool = False
    timeout: int = 30
    memory: int = 256
    # Concurrency reserved (and capped) for the function, so a rush on it cannot starve the others.
    reserved_concurrency: int | None = None
    # The dev stack's limit when there is no reserved concurrency: enough for a rush on two cores without
    # one function's backlog starving the others of the embedded AWS (devstack.environments).
    dev_concurrency: int = FALLBACK_DEV_CONCURRENCY


# A gone WebSocket connection is forgotten by whoever pushed to it (chalicelib.domain.connections.close_connection).
_FORGET_READ = (index(Subscription.by_connection),)
_FORGET_WRITE = (table(Connection), table(Subscription))
# Chalicelib's inbox and push path (chalicelib.delivery.notifications, live_stock, pusher, consumers).
_NOTIFY_READ = (
    table(Drop),
    index(Connection.by_user),
    table(Subscription),
    *_FORGET_READ,
    table(ProcessedEvent),
    table(StockShard),
)
_NOTIFY_WRITE = (table(Notification), table(ProcessedEvent), *_FORGET_WRITE)

ACCESS: dict[str, FunctionAccess] = {
    Fn.API: FunctionAccess(
        dev_concurrency=16,
        read=(
            table(User),
            table(Creator),
            table(Follow),
            index(Follow.by_user),
            table(Product),
            index(Product.by_status),
            table(Drop),
            index(Drop.by_status),
            table(Order),
            index(Order.by_user),
            table(IdempotencyKey),
            table(Purchase),
            table(Notification),
            # The creator's view (chalicelib.domain.sales) and the inbox's unread count and read marks.
            index(Drop.by_creator),
            table(DropSales),
            index(Order.by_drop),
            index(Notification.unread),
            # Hot drops (docs/sale-modes.md): shards, lines, admissions and per-user rate limits.
            table(StockShard),
            table(Line),
            table(Admission),
            index(Admission.by_position),
            index(Admission.by_ticket),  # the draw's public entry list, in entry id order
            table(SigningKey),
            # E-mail and Web Push (chalicelib.domain.preferences, webpush): switches and browsers' subscriptions.
            table(NotificationPreference),
            table(WebPushSubscription),
        ),
        write=(
            table(User),
            table(Creator),
            table(Follow),
            table(Product),
            table(Drop),
            table(DropSales),  # the Stripe webhook confirms orders (chalicelib.delivery.payments.handle_webhook)
            table(Order),
            table(IdempotencyKey),
            table(Purchase),
            table(Notification),
            table(StockShard),
            table(Line),
            table(Admission),
            table(RateLimit),
            table(SigningKey),
            table(NotificationPreference),
            table(WebPushSubscription),
        ),
        # GET /products without a status filter pages through the whole catalog; GET /creators?query=
        # filters the creators (domain.search).
        scan=(table(Product), table(Creator)),
        schedules=True,
        # AdminDeleteUser undoes a sign-up whose Users row could not be written.
        cognito=("cognito-idp:AdminConfirmSignUp", "cognito-idp:AdminGetUser", "cognito-idp:AdminDeleteUser"),
        payment_secrets=True,
        push_keys=True,  # GET /push/vapid-public-key
        images=True,  # POST /products/{id}/images
        timeout=29,
        memory=1024,
    ),
    # Streams -> SNS: every event is built from the stream record's images, and nothing is written (a
    # drop's status follows its stock in the domain: live_stock and settlement); a sharded drop's
    # stock_changed carries its shards' total (read after the write).
    Fn.DOMAIN_EVENTS: FunctionAccess(
        # One batch per stream shard at once, as Lambda runs them: Drops, Orders and StockShards have one each.
        dev_concurrency=3,
        read=(table(StockShard),),
        publish=True,
        timeout=60,
        memory=512,
    ),
    # Reads a batch's orders at once (BatchGetItem); the order's status guards every charge and settlement.
    # A declined payment's units make a sold-out drop live again (scheduling.mark_back_in_stock: a sharded
    # drop's shards are read, the drop's and its product's status written).
    Fn.PAYMENTS: FunctionAccess(
        read=(table(Order), table(Drop), table(Purchase), table(StockShard)),
        # DropSales: a confirmation counts the drop's sales in the same transaction (chalicelib.domain.orders).
        # StockShards: a failed payment gives a sharded drop's units back to their shard.
        write=(table(Order), table(Drop), table(DropSales), table(Purchase), table(StockShard), table(Product)),
        payment_secrets=True,
        timeout=30,
        memory=512,
        # The queue's MaximumConcurrency (infra/stack.py, docs/capacity.md) plus room for a retry's overlap;
        # Stripe rate-limits anyway, and the rest of the account's concurrency stays with the API.
        reserved_concurrency=12,
    ),
    Fn.FANOUT: FunctionAccess(
        # A drop's online audience: every open connection intersected with the follow graph
        # (connections.online_followers: a Scan of Connections, BatchGetItem on Follows).
        # Notifications: an order event's inbox row is its marker (consumers.NotifyBatch); Connections:
        # the buyers' quota rows name their open connections (read with those markers, one BatchGetItem).
        read=(*_NOTIFY_READ, table(Creator), table(Follow), table(Notification), table(Connection)),
        scan=(table(Connection),),
        write=_NOTIFY_WRITE,
        # Deliver: the inbox slices; push_slices: a big audience's push of a drop event, in slices.
        send=(DELIVER.name, PUSH_SLICES.name),
        ws_push=True,
        timeout=20,
        memory=512,
        # Its two queue mappings' MaximumConcurrency (notify 20, push_slices 20), so a big push's slices do
        # not throttle the order pushes beside them.
        reserved_concurrency=40,
    ),
    Fn.DELIVER: FunctionAccess(
        # E-mail and Web Push per slice (chalicelib.delivery.reach): switches, addresses, subscriptions (a gone
        # one is deleted), the unsubscribe links' key.
        read=(
            *_NOTIFY_READ,
            table(Follow),
            table(NotificationPreference),
            table(User),
            table(WebPushSubscription),
            table(SigningKey),
        ),
        write=(*_NOTIFY_WRITE, table(WebPushSubscription), table(SigningKey)),
        # Re-queues the rest of a follower slice on its own queue.
        send=(DELIVER.name,),
        ws_push=True,
        email=True,
        push_keys=True,
        timeout=20,
        memory=512,
        # A drop to a million followers is thousands of slices: capped so the API keeps its share.
        reserved_concurrency=60,
    ),
    # Live stock: the drop's marker (ProcessedEvents), its stock (Drops, StockShards) and viewers
    # (Subscriptions); queues its own deferred pushes and audience slices. A stock of zero moves the
    # drop's and its product's status to sold_out (scheduling.mark_sold_out).
    Fn.LIVE_STOCK: FunctionAccess(
        dev_concurrency=2,
        read=(table(ProcessedEvent), table(Drop), table(StockShard), table(Subscription), *_FORGET_READ),
        write=(table(ProcessedEvent), table(Drop), table(Product), *_FORGET_WRITE),
        send=(LIVE_STOCK.name,),
        ws_push=True,
        timeout=20,
        memory=512,
        reserved_concurrency=25,
    ),
    Fn.DROP_LIFECYCLE: FunctionAccess(
        dev_concurrency=16,
        # StockShards: a sharded drop's start reads its shards' stock (BatchGetItem) for the drop_started event.
        read=(table(Drop), table(StockShard)),
        write=(table(Drop), table(Product)),
        # Scheduler fires up to a minute early; the target waits for the exact second.
        timeout=120,
    ),
    Fn.SWEEPER: FunctionAccess(
        dev_concurrency=1,  # never overlaps itself, as a rate() rule with reserved concurrency 1
        # Starts/ends overdue drops (scheduling.sweep) and expires unpaid reservations (orders.expire_overdue).
        read=(table(Drop), index(Drop.by_status), table(Order), index(Order.pending_by_expiry), table(StockShard)),
        write=(table(Drop), table(Product), table(Order), table(Purchase), table(StockShard)),
        timeout=60,
        memory=512,
    ),
    Fn.ADMISSIONS: FunctionAccess(
        dev_concurrency=1,
        # Seals, orders and serves queue and draw lines (chalicelib.domain.lines); pushes and inboxes the results.
        read=(
            table(Line),
            index(Line.by_activity),
            table(Admission),
            index(Admission.by_position),
            table(Drop),
            table(StockShard),
            index(Connection.by_user),
            table(Connection),  # a tick's admitted users' quota rows name their connections (one BatchGetItem)
            table(SigningKey),
            *_FORGET_READ,
        ),
        # A push to a gone socket forgets it (_FORGET_WRITE), as every pusher does.
        write=(table(Line), table(Admission), table(Drop), table(Notification), table(SigningKey), *_FORGET_WRITE),
        # Hands a line's placing (at the start) and a draw's closing (at the end) to the lines queue; a
        # draw's winners' e-mail and push go through the deliver queue (chalicelib.delivery.reach.enqueue).
        send=(LINES.name, DELIVER.name),
        ws_push=True,
        timeout=60,
        memory=512,
    ),
    # Slices of placing a line and closing a draw (chalicelib.delivery.line_slices): each within its time budget.
    Fn.LINE_SLICES: FunctionAccess(
        read=(
            table(Line),
            table(Admission),
            index(Admission.by_rank),
            index(Admission.by_position),
            table(Drop),
            table(StockShard),
            index(Connection.by_user),
            table(Connection),  # the told users' quota rows name their open connections (one BatchGetItem)
            *_FORGET_READ,
        ),
        write=(table(Line), table(Admission), table(Drop), table(Notification), *_FORGET_WRITE),
        # The next slice of unfinished work goes on its own queue.
        send=(LINES.name,),
        ws_push=True,
        timeout=60,
        memory=512,
        # Lines are placed one slice after another; a few run at once for lines of different drops.
        reserved_concurrency=5,
    ),
    # At the per-user cap, $connect asks @connections which of the user's sockets are gone and forgets those
    # (reading each held connection's row: chalicelib.domain.connections, the user's quota row).
    Fn.WS_CONNECT: FunctionAccess(
        dev_concurrency=8,
        read=(table(Connection), index(Connection.by_user), *_FORGET_READ),
        write=_FORGET_WRITE,
        ws_push=True,
        timeout=10,
    ),
    # A subscription checks that the drop exists.
    Fn.WS_MESSAGE: FunctionAccess(
        dev_concurrency=8,
        read=(table(Drop), *_FORGET_READ),
        write=(table(Subscription), table(Connection)),
        ws_push=True,
        timeout=10,
    ),
    Fn.WS_DISCONNECT: FunctionAccess(read=_FORGET_READ, write=_FORGET_WRITE, timeout=10),
}
