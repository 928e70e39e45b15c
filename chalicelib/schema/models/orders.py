"""Orders, their idempotency keys and each buyer's units per drop."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.schema.models.base import NEW_AND_OLD_IMAGES, _index_meta, _meta


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
    # Which slot of its drop's sale the order counts in once confirmed (chalicelib.core.timeline), fixed
    # when it is placed; an order stored before this attribute takes the slot of its created_at.
    sales_slot = NumberAttribute(null=True)
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
