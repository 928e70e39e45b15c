"""The creator's view of their drops: live stock, orders by status, units sold, revenue, latest orders.

Nothing here scans or counts orders: the figures are counters moved in the same transaction as the
order itself. Placing an order and giving its stock back (payment_failed, expired) already write the
drop's row, so their counts live there; a confirmation writes the order and the drop's DropSales row
(confirmed orders, units, revenue) and leaves the drop's row to the buyers. The latest orders are one
query on the Orders `by_drop` index.

The chart over time reads the same DropSales row: each confirmation also adds its units to the slot
of the drop's sale the order was placed in (chalicelib.core.timeline, at most 120 slots), so the whole
series is one strongly consistent read however many orders the drop has. A queue's or a draw's line
figures are its Line row's counters (one more read).
"""

from __future__ import annotations

from typing import Any

from chalicelib.core import timeline
from chalicelib.core.errors import InvalidPageError
from chalicelib.core.statuses import OrderStatus
from chalicelib.core.validation import format_time
from chalicelib.domain import accounts
from chalicelib.domain.catalog import DRAW, QUEUE, drop_view, owned_drop, sale_mode_of, with_hot_fields
from chalicelib.domain.orders import derived_status, orders_of
from chalicelib.schema import stock
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import (
    ADMITTED_PREFIX,
    JOINS_PREFIX,
    Drop,
    DropSales,
    Line,
    Order,
    line_span,
    slot_counters,
    sold_by_slot,
)
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
    """GET /drops/{id}/sales: the figures, series and latest orders of the caller's own drop; 404 for anyone else."""
    drop = owned_drop(user_id, drop_id, consistent_read=True)  # another creator's: as if it did not exist
    raw = DropSales._get_connection().get_item(drop_id, consistent_read=True).get("Item")
    sales = DropSales.from_raw_data(raw) if raw else None
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
    return {
        **drop_view(drop),
        **figures(drop, sales),
        "recent_orders": recent,
        "series_slot_seconds": timeline.slot_width(int(drop.start_time), int(drop.end_time)) // 1000,
        "series": series(drop, sold_by_slot(raw or {}), now),
        "line": line_figures(drop, now),
    }


def series(drop: Drop, sold: dict[int, int], now: int) -> list[dict[str, Any]]:
    """Units sold per slot of the drop's sale, their running total and the stock not sold yet at each
    slot's end, from the start up to now (or the end): nothing before the start."""
    start, end = int(drop.start_time), int(drop.end_time)
    count = timeline.slot_count(start, end)
    sold = {slot: units for slot, units in sold.items() if 0 <= slot < count}
    if now < start and not sold:
        return []
    last = max([timeline.slot_of(start, end, min(now, end - 1)), *sold])
    points, total = [], 0
    for slot in range(last + 1):
        units = sold.get(slot, 0)
        total += units
        points.append(
            {
                "at": format_time(timeline.slot_start(start, end, slot)),
                "sold": units,
                "sold_total": total,
                "stock": int(drop.initial_stock) - total,
            }
        )
    return points


def line_figures(drop: Drop, now: int) -> dict[str, Any] | None:
    """A queue's joins and admissions, or a draw's entries and winners (those sent `draw_won`: the first
    `stock` entries and whoever an unclaimed unit passed to), in total and over time: slots of the line's
    span (chalicelib.core.timeline.LINE_SLOTS) from its opening up to now; None for a first-come drop."""
    mode = sale_mode_of(drop)
    if mode not in (QUEUE, DRAW):
        return None
    joined_name, admitted_name = ("entries", "winners") if mode == DRAW else ("joins", "admissions")
    raw = Line._get_connection().get_item(drop.drop_id, consistent_read=True).get("Item") or {}
    line = Line.from_raw_data(raw) if raw else None
    joined = int(line.early_count or 0) + int(line.late_count or 0) if line else 0
    opens, end = line_span(drop)
    count = timeline.slot_count(opens, end, timeline.LINE_SLOTS)
    joins = {slot: n for slot, n in slot_counters(raw, JOINS_PREFIX).items() if slot < count}
    raised = {slot: n for slot, n in slot_counters(raw, ADMITTED_PREFIX).items() if slot < count}
    points: list[dict[str, Any]] = []
    if now >= opens or joins:
        last = max([timeline.slot_of(opens, end, min(now, end - 1), timeline.LINE_SLOTS), *joins, *raised])
        running = admitted = 0
        for slot in range(last + 1):
            running += joins.get(slot, 0)
            admitted = max(admitted, raised.get(slot, 0))  # the serving counter only rises
            at = format_time(timeline.slot_start(opens, end, slot, timeline.LINE_SLOTS))
            points.append({"at": at, joined_name: running, admitted_name: admitted})
    return {
        joined_name: joined,
        admitted_name: int(line.serving or 0) if line else 0,
        "slot_seconds": timeline.slot_width(opens, end, timeline.LINE_SLOTS) // 1000,
        "series": points,
    }
