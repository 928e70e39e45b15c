"""Products, drops and a drop's sales figures."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib.core.statuses import DRAFT, DropStatus
from chalicelib.schema.models.base import NEW_AND_OLD_IMAGES, _index_meta, _meta, slot_counter, slot_counters


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
    status = UnicodeAttribute(default=DRAFT)
    latest_drop_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    images = UnicodeSetAttribute(null=True)  # the keys of its uploaded images (domain.images)
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
    status = UnicodeAttribute(default=DropStatus.SCHEDULED)
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
    # Units sold per slot of the drop (chalicelib.core.timeline): top-level numbers `s0`, `s1`, … (ADD
    # works on top-level attributes only), moved with the totals. At most 120 short ones keep the row
    # under 1 KB (945 bytes with all 120 slots at up to 99,999 units each), so a confirmation still costs
    # one write unit here (two, transactional); read with `sold_by_slot`.


SOLD_PREFIX = "s"


def sold_in_slot(slot: int) -> NumberAttribute:
    """The DropSales attribute counting the units sold in one slot, for an update's ADD."""
    return slot_counter(SOLD_PREFIX, slot)


def sold_by_slot(raw: dict[str, Any]) -> dict[int, int]:
    """The slot counters of a raw DropSales item (as GetItem returns it)."""
    return slot_counters(raw, SOLD_PREFIX)


# The Orders indexes project keys only: a confirmation changes the status and would otherwise rewrite
# every index entry of the order; their readers fetch the rows (orders.orders_of).
