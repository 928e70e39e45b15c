"""The one schema: PynamoDB models that infra/, the dev stack and the tests all read.

Storage conventions: every timestamp is integer epoch milliseconds (the API shows ISO-8601 Z);
TTL attributes are epoch seconds, as DynamoDB requires; money is integer cents plus a currency.
"""

from __future__ import annotations

import threading
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.config import Settings, get_settings

NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"


class _BoundMeta(type):
    """Meta classes whose table name is the current Settings' (read on first use, never at import).

    PynamoDB reads Meta.table_name before anything else when it opens a model's connection, so that read
    binds every model to the Settings: their region and DynamoDB endpoint, and a fresh connection when the
    Settings were replaced (a test's override, the dev stack provisioned anew). Otherwise each model keeps
    its one connection for the life of the execution environment."""

    @property
    def table_name(cls) -> str:
        settings = get_settings()
        if _bound.settings is not settings:
            bind(settings)
        return settings.table_name(cls.table)  # type: ignore[attr-defined]


class _Meta(metaclass=_BoundMeta):
    """Shared Meta attributes: region, endpoint (both set by bind) and on-demand billing."""

    table = ""  # the table's name without the stage prefix
    # Placeholders, so PynamoDB's class setup finds them without reading the environment.
    region: str | None = None
    host: str | None = None
    billing_mode = "PAY_PER_REQUEST"
    max_pool_connections = 64
    # The settings' AWS call timeouts and retries (set by bind, like the endpoint).
    connect_timeout_seconds: float = 2.0
    read_timeout_seconds: float = 10.0
    max_retry_attempts = 1


class _Binding:
    settings: Settings | None = None


_bound = _Binding()
_bind_lock = threading.Lock()


def _meta(name: str, **extra: Any) -> Any:
    return _BoundMeta("Meta", (_Meta,), {"table": name, **extra})


def _index_meta(name: str, projection: Any) -> Any:
    return type("Meta", (), {"index_name": name, "projection": projection})


class User(Model):
    Meta = _meta("Users")
    user_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    creator_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()


class Creator(Model):
    Meta = _meta("Creators")
    creator_id = UnicodeAttribute(hash_key=True)
    owner_user_id = UnicodeAttribute()
    name = UnicodeAttribute()
    profile = UnicodeAttribute(default="")
    follower_count = NumberAttribute(default=0)
    created_at = NumberAttribute()
    search_name = UnicodeAttribute(null=True)  # the name case-folded, for GET /creators?query= (chalicelib.search)


class FollowsByUser(GlobalSecondaryIndex["Follow"]):
    Meta = _index_meta("by_user", AllProjection())
    user_id = UnicodeAttribute(hash_key=True)
    followed_at = NumberAttribute(range_key=True)


class Follow(Model):
    """One row per (creator, follower); the creator partition is read in sort-key slices."""

    Meta = _meta("Follows")
    creator_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    followed_at = NumberAttribute()
    by_user = FollowsByUser()


class ProductsByCreator(GlobalSecondaryIndex["Product"]):
    Meta = _index_meta("by_creator", AllProjection())
    creator_id = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class ProductsByStatus(GlobalSecondaryIndex["Product"]):
    Meta = _index_meta("by_status", AllProjection())
    status = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class Product(Model):
    Meta = _meta("Products")
    product_id = UnicodeAttribute(hash_key=True)
    creator_id = UnicodeAttribute()
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    price_cents = NumberAttribute()
    currency = UnicodeAttribute()
    # The status of the latest drop, or "draft"; kept in step by the drop lifecycle.
    status = UnicodeAttribute(default="draft")
    latest_drop_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    images = UnicodeSetAttribute(null=True)  # the keys of its uploaded images (chalicelib.images)
    by_creator = ProductsByCreator()
    by_status = ProductsByStatus()


# What every order (or its settlement) changes on a Drops row: kept out of the Drops indexes, so an
# order's stock decrement writes the table alone and never rewrites an index entry. Reads through an
# index add these back from the rows (catalog.with_hot_fields).
DROP_HOT_ATTRIBUTES = ("stock", "orders_placed", "orders_failed", "orders_expired", "orders_cancelled")
# Everything else a drop holds (its keys are projected anyway); tests/unit/test_schema.py checks that
# these and the hot ones are all of Drop's attributes.
DROP_INDEXED_ATTRIBUTES = (
    "product_id",
    "end_time",
    "initial_stock",
    "per_user_limit",
    "low_stock_at",
    "price_cents",
    "currency",
    "created_at",
    "sale_mode",
    "stock_shards",
    "opens_at",
    "admissions_per_second",
    "admission_seconds",
    "draw_seed",
    "draw_commitment",
    "drawn_at",
    "released_at",
)


class DropsByStatus(GlobalSecondaryIndex["Drop"]):
    # The creator is the by_creator index's key, so this index must carry it itself.
    Meta = _index_meta("by_status", IncludeProjection([*DROP_INDEXED_ATTRIBUTES, "creator_id"]))
    status = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class DropsByCreator(GlobalSecondaryIndex["Drop"]):
    Meta = _index_meta("by_creator", IncludeProjection(list(DROP_INDEXED_ATTRIBUTES)))
    creator_id = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class Drop(Model):
    Meta = _meta("Drops", stream_view_type=NEW_AND_OLD_IMAGES)
    drop_id = UnicodeAttribute(hash_key=True)
    product_id = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    start_time = NumberAttribute()
    end_time = NumberAttribute()
    initial_stock = NumberAttribute()
    stock = NumberAttribute()
    status = UnicodeAttribute(default="scheduled")
    per_user_limit = NumberAttribute(null=True)
    low_stock_at = NumberAttribute(null=True)
    price_cents = NumberAttribute()
    currency = UnicodeAttribute()
    created_at = NumberAttribute()
    # Order counters for the creator's view, moved by the transactions that already write this row
    # (placing an order, giving its stock back); absent until the first order. Confirmations are
    # counted in DropSales instead, so they never contend with buyers for this hot row.
    orders_placed = NumberAttribute(null=True)
    orders_failed = NumberAttribute(null=True)
    orders_expired = NumberAttribute(null=True)
    orders_cancelled = NumberAttribute(null=True)  # cancelled by their buyers before payment
    # Sale modes (docs/sale-modes.md); a row without them is a first-come drop on its own stock.
    sale_mode = UnicodeAttribute(null=True)
    # > 1: the stock lives in StockShard rows and `stock` keeps the initial figure.
    stock_shards = NumberAttribute(null=True)
    opens_at = NumberAttribute(null=True)  # queue joins or draw entries accepted from then on
    admissions_per_second = NumberAttribute(null=True)
    admission_seconds = NumberAttribute(null=True)  # an admitted user's or a winner's purchase window
    draw_seed = UnicodeAttribute(null=True)  # secret until drawn_at, then published
    draw_commitment = UnicodeAttribute(null=True)
    drawn_at = NumberAttribute(null=True)
    # A draw whose order ran out with units left sells them first-come from then on (docs/sale-modes.md).
    released_at = NumberAttribute(null=True)
    by_status = DropsByStatus()
    by_creator = DropsByCreator()


class DropSales(Model):
    """What a drop's confirmed orders add up to, moved in the same transaction as each confirmation."""

    Meta = _meta("DropSales")
    drop_id = UnicodeAttribute(hash_key=True)
    orders_confirmed = NumberAttribute(default=0)
    units_sold = NumberAttribute(default=0)
    revenue_cents = NumberAttribute(default=0)


# The Orders indexes project keys only: a confirmation changes the status and would otherwise rewrite
# every index entry of the order; their readers fetch the rows (orders.orders_of).
class OrdersByUser(GlobalSecondaryIndex["Order"]):
    Meta = _index_meta("by_user", KeysOnlyProjection())
    user_id = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class PendingOrdersByExpiry(GlobalSecondaryIndex["Order"]):
    """Sparse: only orders awaiting payment carry `pending_bucket`, so the sweeper never scans."""

    Meta = _index_meta("pending_by_expiry", KeysOnlyProjection())
    pending_bucket = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute(range_key=True)


class OrdersByDrop(GlobalSecondaryIndex["Order"]):
    """A drop's orders by time: the creator's view reads its latest few without scanning."""

    Meta = _index_meta("by_drop", KeysOnlyProjection())
    drop_id = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class Order(Model):
    Meta = _meta("Orders", stream_view_type=NEW_AND_OLD_IMAGES)
    order_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    drop_id = UnicodeAttribute()
    quantity = NumberAttribute()
    amount_cents = NumberAttribute()
    currency = UnicodeAttribute()
    status = UnicodeAttribute()
    idempotency_key = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    payment_token = UnicodeAttribute(null=True)
    payment_ref = UnicodeAttribute(null=True)
    pending_bucket = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    expires_at = NumberAttribute()
    updated_at = NumberAttribute(null=True)
    stock_shard = NumberAttribute(null=True)  # the shard a sharded drop's units came from (and go back to)
    payment_retries = NumberAttribute(null=True)  # transient charge failures so far (the buyer is told)
    # Whether the order counted its units on the buyer's purchase counter (only a per-user limit, or an
    # admission, makes it; an order stored before this attribute always did): its release gives them back.
    counts_purchase = BooleanAttribute(null=True)
    shipping_address = UnicodeAttribute(null=True)  # JSON of the buyer's ShippingAddress, when given
    by_user = OrdersByUser()
    by_drop = OrdersByDrop()
    pending_by_expiry = PendingOrdersByExpiry()


class IdempotencyKey(Model):
    """`user_id#key`, written in the same transaction as the order it names."""

    Meta = _meta("IdempotencyKeys")
    key_id = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    response_body = UnicodeAttribute()  # the order as first placed, which a replay answers with
    ttl = TTLAttribute(null=True)


class Purchase(Model):
    """`drop_id#user_id` -> units bought; enforces per_user_limit inside the order transaction."""

    Meta = _meta("Purchases")
    purchase_id = UnicodeAttribute(hash_key=True)
    quantity = NumberAttribute(default=0)


class UnreadNotifications(GlobalSecondaryIndex["Notification"]):
    """Sparse: only unread rows carry `unread_user`, so the unread count reads the unread rows only."""

    Meta = _index_meta("unread", KeysOnlyProjection())
    unread_user = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)


class Notification(Model):
    """Inbox row; the sort key embeds the event id so a redelivery overwrites, never duplicates."""

    Meta = _meta("Notifications")
    user_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)
    notification_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    drop_id = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    payload = UnicodeAttribute(default="{}")
    read = BooleanAttribute(default=False)
    unread_user = UnicodeAttribute(null=True)  # the user_id while unread (the `unread` index's key)
    created_at = NumberAttribute()
    ttl = TTLAttribute(null=True)
    unread = UnreadNotifications()


class ConnectionsByUser(GlobalSecondaryIndex["Connection"]):
    Meta = _index_meta("by_user", KeysOnlyProjection())
    user_id = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)


class Connection(Model):
    Meta = _meta("Connections")
    connection_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    connected_at = NumberAttribute()
    ttl = TTLAttribute(null=True)
    # How many drops this connection watches; moves with each Subscription row in one transaction.
    subscriptions = NumberAttribute(null=True)
    # Only on a user's quota row (connection_id "quota#<user_id>", no user_id, chalicelib.connections):
    # the ids of the user's open connections, each added in the transaction that stores its row.
    held = UnicodeSetAttribute(null=True)
    by_user = ConnectionsByUser()


class SubscriptionsByConnection(GlobalSecondaryIndex["Subscription"]):
    Meta = _index_meta("by_connection", KeysOnlyProjection())
    connection_id = UnicodeAttribute(hash_key=True)
    drop_id = UnicodeAttribute(range_key=True)


class Subscription(Model):
    """A connection watching a drop page (live stock)."""

    Meta = _meta("Subscriptions")
    drop_id = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)
    ttl = TTLAttribute(null=True)
    by_connection = SubscriptionsByConnection()


class ProcessedEvent(Model):
    """`consumer#event_id` markers that make every stream/queue consumer idempotent."""

    Meta = _meta("ProcessedEvents")
    event_key = UnicodeAttribute(hash_key=True)
    processed_at = NumberAttribute()
    ttl = TTLAttribute(null=True)


# --- hot drops: sharded stock, waiting rooms and draws, per-user rate limits -------------------
class StockShard(Model):
    """One slice of a sharded drop's stock; it carries the drop's times so an order checks the clock
    on the item it writes."""

    Meta = _meta("StockShards", stream_view_type=NEW_AND_OLD_IMAGES)
    # `drop_id#n`: a partition key of its own per shard, so each shard has a partition's full write rate.
    shard_id = UnicodeAttribute(hash_key=True)
    drop_id = UnicodeAttribute()
    shard = NumberAttribute()
    shard_count = NumberAttribute()
    stock = NumberAttribute()
    initial_stock = NumberAttribute()
    start_time = NumberAttribute()
    end_time = NumberAttribute()
    # The creator's order counters (chalicelib.sales), moved by the writes that move this shard's stock.
    orders_placed = NumberAttribute(null=True)
    orders_failed = NumberAttribute(null=True)
    orders_expired = NumberAttribute(null=True)
    orders_cancelled = NumberAttribute(null=True)


class LinesByActivity(GlobalSecondaryIndex["Line"]):
    """Sparse: only lines still to serve carry `active`, so the admissions tick never scans."""

    Meta = _index_meta("by_activity", AllProjection())
    active = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class Line(Model):
    """A queue or draw drop's line: the counters the admissions tick advances."""

    Meta = _meta("Lines")
    drop_id = UnicodeAttribute(hash_key=True)
    sale_mode = UnicodeAttribute()
    start_time = NumberAttribute()
    end_time = NumberAttribute()
    active = UnicodeAttribute(null=True)
    early_count = NumberAttribute(default=0)  # joined before the start (or entered a draw)
    late_count = NumberAttribute(default=0)  # joined after the start, in arrival order
    sealed = BooleanAttribute(null=True)  # no more early joins: set by the first late join or the tick
    placed = BooleanAttribute(null=True)  # early positions written
    serving = NumberAttribute(default=0)  # positions up to this one are admitted
    settled = NumberAttribute(default=0)  # positions up to this one bought or let their window pass
    # Placing the early entries, a slice at a time (chalicelib.serving): since when, how many placed,
    # and the rank of the last one placed (the next slice starts after it).
    placing_since = NumberAttribute(null=True)
    placed_count = NumberAttribute(default=0)
    placed_rank = UnicodeAttribute(null=True)
    # Closing a draw at the drop's end: since when, and positions up to this one told the result.
    closing_since = NumberAttribute(null=True)
    closed_upto = NumberAttribute(default=0)
    by_activity = LinesByActivity()


class AdmissionsByPosition(GlobalSecondaryIndex["Admission"]):
    Meta = _index_meta("by_position", AllProjection())
    drop_id = UnicodeAttribute(hash_key=True)
    position = NumberAttribute(range_key=True)


class AdmissionsByRank(GlobalSecondaryIndex["Admission"]):
    """Sparse: only early entries have a rank, the key their line is ordered by (chalicelib.serving)."""

    Meta = _index_meta("by_rank", KeysOnlyProjection())
    drop_id = UnicodeAttribute(hash_key=True)
    rank = UnicodeAttribute(range_key=True)


class AdmissionsByTicket(GlobalSecondaryIndex["Admission"]):
    """A draw's public entry list, in the order of its random entry ids."""

    Meta = _index_meta("by_ticket", IncludeProjection(["position"]))
    drop_id = UnicodeAttribute(hash_key=True)
    ticket = UnicodeAttribute(range_key=True)


class Admission(Model):
    """One user in a drop's line: queue position or draw rank, and their purchase window once admitted."""

    Meta = _meta("Admissions")
    drop_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    joined_at = NumberAttribute()
    ticket = UnicodeAttribute(null=True)  # early joiners' random ticket (a draw's public entry id)
    # Early entries' order key: the ticket (queue) or the draw's score and entry id (chalicelib.draws).
    rank = UnicodeAttribute(null=True)
    late_seq = NumberAttribute(null=True)
    position = NumberAttribute(null=True)
    admitted_at = NumberAttribute(null=True)
    admission_expires = NumberAttribute(null=True)
    bought = NumberAttribute(default=0)
    by_position = AdmissionsByPosition()
    by_rank = AdmissionsByRank()
    by_ticket = AdmissionsByTicket()


class RateLimit(Model):
    """A fixed-window counter of one user's requests of one kind (`kind#user#window`), gone with its TTL."""

    Meta = _meta("RateLimits")
    limit_key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    ttl = TTLAttribute(null=True)


class SigningKey(Model):
    """A key the app signs with (admission tokens), made on first use; readable only where granted."""

    Meta = _meta("SigningKeys")
    name = UnicodeAttribute(hash_key=True)
    secret = UnicodeAttribute()
    created_at = NumberAttribute()


# --- e-mail and Web Push (chalicelib.reach) ------------------------------------------------------
class NotificationPreference(Model):
    """A user's switches per channel and event (`email_drop_started`, ...); absent: the default."""

    Meta = _meta("NotificationPreferences")
    user_id = UnicodeAttribute(hash_key=True)
    email_drop_started = BooleanAttribute(null=True)
    email_order_confirmed = BooleanAttribute(null=True)
    email_draw_won = BooleanAttribute(null=True)
    web_push_drop_started = BooleanAttribute(null=True)
    web_push_order_confirmed = BooleanAttribute(null=True)
    web_push_draw_won = BooleanAttribute(null=True)
    updated_at = NumberAttribute(null=True)
    has_push = BooleanAttribute(null=True)  # set once the user stores a push subscription


class WebPushSubscription(Model):
    """A browser's PushSubscription; the sort key is a digest of its endpoint, so a re-subscribe overwrites."""

    Meta = _meta("PushSubscriptions")
    user_id = UnicodeAttribute(hash_key=True)
    endpoint_id = UnicodeAttribute(range_key=True)
    endpoint = UnicodeAttribute()
    p256dh = UnicodeAttribute()
    auth = UnicodeAttribute()
    created_at = NumberAttribute()


ALL_MODELS: tuple[type[Model], ...] = (
    User,
    Creator,
    Follow,
    Product,
    Drop,
    DropSales,
    Order,
    IdempotencyKey,
    Purchase,
    Notification,
    Connection,
    Subscription,
    ProcessedEvent,
    StockShard,
    Line,
    Admission,
    RateLimit,
    SigningKey,
    NotificationPreference,
    WebPushSubscription,
)
# Tables whose changes are domain events (DynamoDB Streams are the outbox).
STREAM_MODELS: tuple[type[Model], ...] = (Drop, Order, StockShard)


def table_spec(model: type[Model]) -> dict[str, Any]:
    """A model's table as CreateTable arguments plus its TTL attribute (None if it has none)."""
    attr_types: dict[str, str] = {}

    def key_schema(attrs: dict[str, Any]) -> list[dict[str, str]]:
        keys = []
        for attr in attrs.values():
            if attr.is_hash_key or attr.is_range_key:
                attr_types[attr.attr_name] = attr.attr_type
                keys.append({"AttributeName": attr.attr_name, "KeyType": "HASH" if attr.is_hash_key else "RANGE"})
        return sorted(keys, key=lambda k: k["KeyType"] != "HASH")

    spec: dict[str, Any] = {
        "TableName": model.Meta.table_name,
        "KeySchema": key_schema(model.get_attributes()),
        "BillingMode": "PAY_PER_REQUEST",
    }
    indexes = []
    for index in sorted(model._indexes.values(), key=lambda i: i.Meta.index_name):
        projection: dict[str, Any] = {"ProjectionType": index.Meta.projection.projection_type}
        if index.Meta.projection.non_key_attributes:
            projection["NonKeyAttributes"] = list(index.Meta.projection.non_key_attributes)
        indexes.append(
            {
                "IndexName": index.Meta.index_name,
                "KeySchema": key_schema(index.Meta.attributes),
                "Projection": projection,
            }
        )
    if indexes:
        spec["GlobalSecondaryIndexes"] = indexes
    spec["AttributeDefinitions"] = [{"AttributeName": n, "AttributeType": t} for n, t in sorted(attr_types.items())]
    stream_view = getattr(model.Meta, "stream_view_type", None)
    if stream_view:
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view}
    ttl = model._ttl_attribute()
    return {"create": spec, "ttl_attribute": ttl.attr_name if ttl else None}


def create_all_tables(dynamodb_client: Any) -> list[str]:
    """Create every table of ALL_MODELS through `dynamodb_client` (skipping existing ones)."""
    existing = set(dynamodb_client.list_tables().get("TableNames", []))
    created = []
    for model in ALL_MODELS:
        spec = table_spec(model)
        name = spec["create"]["TableName"]
        if name not in existing:
            dynamodb_client.create_table(**spec["create"])
            created.append(name)
        if spec["ttl_attribute"]:
            dynamodb_client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["ttl_attribute"]},
            )
    return created


def bind(settings: Settings) -> None:
    """Point every model at `settings`' region and DynamoDB endpoint; their connections open anew on next use."""
    with _bind_lock:
        if _bound.settings is settings:
            return
        _Meta.region = settings.region
        _Meta.host = settings.endpoint_url("dynamodb")
        _Meta.connect_timeout_seconds = settings.aws_connect_timeout_seconds
        _Meta.read_timeout_seconds = settings.aws_read_timeout_seconds
        _Meta.max_retry_attempts = settings.aws_max_attempts - 1
        for model in ALL_MODELS:
            model._connection = None
        _bound.settings = settings
