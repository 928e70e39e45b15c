"""What each Lambda function may touch: the one place the per-function IAM policies come from.

Keys are handler names: the `name=` of an `@app.lambda_function` / `@app.schedule`, the Python name of
an `@app.on_ws_*` handler, and API_HANDLER for the REST routes. Tables are logical names (the model's
table name without the stage prefix); "Table/index" grants reads on that index only. Queues and
streams a function consumes come from chalicelib.topology and are added by the stack, not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.topology import DELIVER, LINES, LIVE_STOCK

API_HANDLER = "api"


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
    # Reads the stage's VAPID key secret, and makes it the first time (chalicelib.webpush).
    push_keys: bool = False
    # Signs browser uploads of product images to the images bucket (chalicelib.images): an upload acts
    # with the signer's permission, s3:PutObject under images/.
    images: bool = False
    timeout: int = 30
    memory: int = 256
    # Concurrency reserved (and capped) for the function, so a rush on it cannot starve the others.
    reserved_concurrency: int | None = None


# A gone WebSocket connection is forgotten by whoever pushed to it (chalicelib.connections.close_connection).
_FORGET_READ = ("Subscriptions/by_connection",)
_FORGET_WRITE = ("Connections", "Subscriptions")
# Chalicelib's inbox and push path (chalicelib.notifications, live_stock, pusher, consumers).
_NOTIFY_READ = ("Drops", "Connections/by_user", "Subscriptions", *_FORGET_READ, "ProcessedEvents", "StockShards")
_NOTIFY_WRITE = ("Notifications", "ProcessedEvents", *_FORGET_WRITE)

ACCESS: dict[str, FunctionAccess] = {
    API_HANDLER: FunctionAccess(
        read=(
            "Users",
            "Creators",
            "Follows",
            "Follows/by_user",
            "Products",
            "Products/by_status",
            "Drops",
            "Drops/by_status",
            "Orders",
            "Orders/by_user",
            "IdempotencyKeys",
            "Purchases",
            "Notifications",
            # The creator's view (chalicelib.sales) and the inbox's unread count and read marks.
            "Drops/by_creator",
            "DropSales",
            "Orders/by_drop",
            "Notifications/unread",
            # Hot drops (docs/sale-modes.md): shards, lines, admissions and per-user rate limits.
            "StockShards",
            "Lines",
            "Admissions",
            "Admissions/by_position",
            "Admissions/by_ticket",  # the draw's public entry list, in entry id order
            "SigningKeys",
            # E-mail and Web Push (chalicelib.preferences, webpush): switches and browsers' subscriptions.
            "NotificationPreferences",
            "PushSubscriptions",
        ),
        write=(
            "Users",
            "Creators",
            "Follows",
            "Products",
            "Drops",
            "DropSales",  # the Stripe webhook confirms orders (chalicelib.payments.handle_webhook)
            "Orders",
            "IdempotencyKeys",
            "Purchases",
            "Notifications",
            "StockShards",
            "Lines",
            "Admissions",
            "RateLimits",
            "SigningKeys",
            "NotificationPreferences",
            "PushSubscriptions",
        ),
        # GET /products without a status filter pages through the whole catalog; GET /creators?query=
        # filters the creators (chalicelib.search).
        scan=("Products", "Creators"),
        schedules=True,
        # AdminDeleteUser undoes a sign-up whose Users row could not be written.
        cognito=("cognito-idp:AdminConfirmSignUp", "cognito-idp:AdminGetUser", "cognito-idp:AdminDeleteUser"),
        payment_secrets=True,
        push_keys=True,  # GET /push/vapid-public-key
        images=True,  # POST /products/{id}/images
        timeout=29,
        memory=1024,
    ),
    # Streams -> SNS: every event is built from the stream record's images. A sell-out (or stock coming
    # back) also moves the drop's and its product's status (scheduling.sync_stock_status); a sharded
    # drop's stock_changed carries its shards' total (read after the write).
    "domain_events": FunctionAccess(
        read=("Drops", "StockShards"), write=("Drops", "Products"), publish=True, timeout=60, memory=512
    ),
    # Reads a batch's orders at once (BatchGetItem); the order's status guards every charge and settlement.
    "payments": FunctionAccess(
        read=("Orders", "Drops", "Purchases"),
        # DropSales: a confirmation counts the drop's sales in the same transaction (chalicelib.orders).
        # StockShards: a failed payment gives a sharded drop's units back to their shard.
        write=("Orders", "Drops", "DropSales", "Purchases", "StockShards"),
        payment_secrets=True,
        timeout=30,
        memory=512,
        # The queue's MaximumConcurrency (infra/stack.py, docs/capacity.md) plus room for a retry's overlap;
        # Stripe rate-limits anyway, and the rest of the account's concurrency stays with the API.
        reserved_concurrency=12,
    ),
    "fanout": FunctionAccess(
        # A drop's online audience: every open connection intersected with the follow graph
        # (connections.online_followers: a Scan of Connections, BatchGetItem on Follows).
        # Notifications: an order event's inbox row is its marker (consumers.NotifyBatch); Connections:
        # the buyers' quota rows name their open connections (read with those markers, one BatchGetItem).
        read=(*_NOTIFY_READ, "Creators", "Follows", "Notifications", "Connections"),
        scan=("Connections",),
        write=_NOTIFY_WRITE,
        send=(DELIVER.name,),
        ws_push=True,
        timeout=20,
        memory=512,
        reserved_concurrency=25,
    ),
    "deliver": FunctionAccess(
        # E-mail and Web Push per slice (chalicelib.reach): switches, addresses, subscriptions (a gone
        # one is deleted), the unsubscribe links' key.
        read=(*_NOTIFY_READ, "Follows", "NotificationPreferences", "Users", "PushSubscriptions", "SigningKeys"),
        write=(*_NOTIFY_WRITE, "PushSubscriptions", "SigningKeys"),
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
    # (Subscriptions); queues its own deferred pushes and audience slices.
    "live_stock": FunctionAccess(
        read=("ProcessedEvents", "Drops", "StockShards", "Subscriptions", *_FORGET_READ),
        write=("ProcessedEvents", *_FORGET_WRITE),
        send=(LIVE_STOCK.name,),
        ws_push=True,
        timeout=20,
        memory=512,
        reserved_concurrency=25,
    ),
    "drop_lifecycle": FunctionAccess(
        # StockShards: a sharded drop's start reads its shards' stock (BatchGetItem) for the drop_started event.
        read=("Drops", "StockShards"),
        write=("Drops", "Products"),
        # Scheduler fires up to a minute early; the target waits for the exact second.
        timeout=120,
    ),
    "sweeper": FunctionAccess(
        # Starts/ends overdue drops (scheduling.sweep) and expires unpaid reservations (orders.expire_overdue).
        read=("Drops", "Drops/by_status", "Orders", "Orders/pending_by_expiry", "StockShards"),
        write=("Drops", "Products", "Orders", "Purchases", "StockShards"),
        timeout=60,
        memory=512,
    ),
    "admissions": FunctionAccess(
        # Seals, orders and serves queue and draw lines (chalicelib.lines); pushes and inboxes the results.
        read=(
            "Lines",
            "Lines/by_activity",
            "Admissions",
            "Admissions/by_position",
            "Drops",
            "StockShards",
            "Connections/by_user",
            "SigningKeys",
            *_FORGET_READ,
        ),
        # A push to a gone socket forgets it (_FORGET_WRITE), as every pusher does.
        write=("Lines", "Admissions", "Drops", "Notifications", "SigningKeys", *_FORGET_WRITE),
        # Hands a line's placing (at the start) and a draw's closing (at the end) to the lines queue; a
        # draw's winners' e-mail and push go through the deliver queue (chalicelib.reach.enqueue).
        send=(LINES.name, DELIVER.name),
        ws_push=True,
        timeout=60,
        memory=512,
    ),
    # Slices of placing a line and closing a draw (chalicelib.serving): each within its time budget.
    "line_slices": FunctionAccess(
        read=(
            "Lines",
            "Admissions",
            "Admissions/by_rank",
            "Admissions/by_position",
            "Drops",
            "StockShards",
            "Connections/by_user",
            *_FORGET_READ,
        ),
        write=("Lines", "Admissions", "Drops", "Notifications", *_FORGET_WRITE),
        # The next slice of unfinished work goes on its own queue.
        send=(LINES.name,),
        ws_push=True,
        timeout=60,
        memory=512,
        # Lines are placed one slice after another; a few run at once for lines of different drops.
        reserved_concurrency=5,
    ),
    # At the per-user cap, $connect asks @connections which of the user's sockets are gone and forgets those
    # (reading each held connection's row: chalicelib.connections, the user's quota row).
    "ws_connect": FunctionAccess(
        read=("Connections", "Connections/by_user", *_FORGET_READ), write=_FORGET_WRITE, ws_push=True, timeout=10
    ),
    # A subscription checks that the drop exists.
    "ws_message": FunctionAccess(
        read=("Drops", *_FORGET_READ), write=("Subscriptions", "Connections"), ws_push=True, timeout=10
    ),
    "ws_disconnect": FunctionAccess(read=_FORGET_READ, write=_FORGET_WRITE, timeout=10),
}
