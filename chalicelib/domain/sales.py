"""The creator's view of their drops: live stock, orders by status, units sold, revenue, latest orders.

Nothing here scans or counts orders: the figures are counters moved in the same transaction as the
order itself. Placing an order and giving its stock back (payment_failed, expired) already write the
drop's row, so their counts live there; a confirmation writes the order and the drop's DropSales row
(confirmed orders, units, revenue) and leaves the drop's row to the buyers. The latest orders are one
query on the Orders `by_drop` index.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core.errors import InvalidPageError
from chalicelib.core.statuses import OrderStatus
from chalicelib.core.validation import format_time
from chalicelib.domain import accounts
from chalicelib.domain.catalog import drop_view, owned_drop, with_hot_fields
from chalicelib.domain.orders import derived_status, orders_of
from chalicelib.schema import stock
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Drop, DropSales, Order
from chalicelib.schema.pagination import decode_page, page_body

RECENT_ORDERS = 10
_CREATOR_DROPS_PAGE = {"drop_id": "S", "creator_id": "S", "start_time": "N"}


def figures(drop: Drop, sales: DropSales | None) -> dict[str, Any]:
    """A drop's sales counters. An unpaid order stays pending_payment here until the sweeper expires it."""
    counted: list[Any] = [drop]
    left = int(drop.stock)
    if (drop.stock_shards or 1) > 1:
        # A sharded drop's stock and counters live on its shards (chalicelib.schema.stock).
        counted = stock.shard_rows(drop.drop_id, int(drop.stock_shards))
        left = sum(int(row.stock) for row in counted)
    placed, failed, expired, cancelled = (
        sum(int(getattr(row, name) or 0) for row in counted)
        for name in ("orders_placed", "orders_failed", "orders_expired", "orders_cancelled")
    )
    confirmed = int(sales.orders_confirmed) if sales else 0
    units_sold = int(sales.units_sold) if sales else 0
    return {
        "orders": {
            OrderStatus.PENDING_PAYMENT: max(0, placed - confirmed - failed - expired - cancelled),
            OrderStatus.CONFIRMED: confirmed,
            OrderStatus.PAYMENT_FAILED: failed,
            OrderStatus.EXPIRED: expired,
            OrderStatus.CANCELLED: cancelled,
        },
        "units_sold": units_sold,
        # Stock taken by orders still awaiting payment (it comes back if they fail or expire).
        "units_reserved": max(0, int(drop.initial_stock) - left - units_sold),
        "revenue_cents": int(sales.revenue_cents) if sales else 0,
    }


def creator_drops(user_id: str, creator_id: str, limit: int, page: str | None) -> dict[str, Any]:
    """GET /creators/{id}/drops: the creator's drops (latest start first) with their figures; owner only."""
    accounts.owned_creator(creator_id, user_id)
    start = decode_page(page, _CREATOR_DROPS_PAGE)
    if start is not None and start["creator_id"]["S"] != creator_id:
        raise InvalidPageError("page belongs to another listing")
    results = Drop.by_creator.query(creator_id, scan_index_forward=False, limit=limit, last_evaluated_key=start)
    drops = with_hot_fields(list(results))
    sales = {row.drop_id: row for row in DropSales.batch_get([d.drop_id for d in drops])} if drops else {}
    items = [{**drop_view(drop), **figures(drop, sales.get(drop.drop_id))} for drop in drops]
    return page_body(items, results.last_evaluated_key)


def drop_sales(user_id: str, drop_id: str) -> dict[str, Any]:
    """GET /drops/{id}/sales: the figures and latest orders of the caller's own drop; 404 for anyone else."""
    drop = owned_drop(user_id, drop_id, consistent_read=True)  # another creator's: as if it did not exist
    try:
        sales: DropSales | None = DropSales.get(drop_id, consistent_read=True)
    except DoesNotExist:
        sales = None
    now = now_ms()
    latest = orders_of(
        [key.order_id for key in Order.by_drop.query(drop_id, scan_index_forward=False, limit=RECENT_ORDERS)]
    )
    recent = [
        {
            "created_at": format_time(order.created_at),
            "quantity": int(order.quantity),
            "status": derived_status(order, now),
        }
        for order in latest
    ]
    return {**drop_view(drop), **figures(drop, sales), "recent_orders": recent}
