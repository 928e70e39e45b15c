"""PATCH /drops/{id} and POST /drops/{id}/cancel: a creator reschedules or changes a drop before it
starts, or calls it off.

Changing: one conditional update of the drop's row (with its stock shards and its line, which carry
its times), refused with 409 `drop_not_editable` once the drop has started or was cancelled. Nothing
is sold before the start, so the stock is still the initial stock and simply replaced. The schedules
move after the write; a schedule that could not move is harmless (the lifecycle target checks the
drop's own times, and the sweeper repairs a missed start within a minute).

Cancelling: one transaction sets the drop `cancelled` and ends its sale now (end_time on the row, its
shards and its line), so the order transaction's own clock condition refuses every order from then on.
Then its schedules go, its unpaid orders are cancelled (units back, as a buyer's cancellation) and its
confirmed orders refunded through the payment provider (the order id keys the refund, so a repeat
refunds once) and marked `refunded`. A repeated cancel does the settling again, which finds only
what is left: it is how a cancellation interrupted half-way is finished. Followers and the drop's
viewers hear `drop_cancelled` from the drop's stream, like every drop event."""

from __future__ import annotations

import logging
import time
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core import ports
from chalicelib.core.errors import DropNotEditableError, InvalidRequestError
from chalicelib.core.observability import count
from chalicelib.core.statuses import DropStatus, OrderStatus
from chalicelib.domain import catalog
from chalicelib.domain.catalog import DRAW, QUEUE, drop_view, owned_drop, sale_mode_of, shard_count_of
from chalicelib.domain.orders import load_order, orders_of, sales_slot_of
from chalicelib.domain.settlement import release_reservation
from chalicelib.schema import schedules
from chalicelib.schema import stock as shards
from chalicelib.schema.commands import DropChanges
from chalicelib.schema.db import Transaction, TransactionCancelledError, now_ms
from chalicelib.schema.models import Drop, DropSales, Line, Order, StockShard, sold_in_slot

log = logging.getLogger("livedrop.drop_changes")

DROP_CANCELLED = DropStatus.CANCELLED
REFUNDED = OrderStatus.REFUNDED
_QUEUE_ONLY = ("queue_opens_before_seconds", "admissions_per_second")
_DRAW_ONLY = ("entries_open_time",)
_MODE_FIELDS = {QUEUE: _DRAW_ONLY, DRAW: _QUEUE_ONLY}
# A cancellation settles orders for at most this long per request; a repeat carries on.
SETTLE_SECONDS = 20.0


def _fresh(user_id: str, drop_id: str) -> Drop:
    owned_drop(user_id, drop_id)
    try:
        return Drop.get(drop_id, consistent_read=True)
    except DoesNotExist:  # pragma: no cover - owned_drop read it a moment ago
        raise DropNotEditableError("the drop changed, try again") from None


def _not_started(drop: Drop, now: int) -> None:
    if drop.status == DROP_CANCELLED:
        raise DropNotEditableError("the drop was cancelled")
    if drop.status != "scheduled" or now >= drop.start_time:
        raise DropNotEditableError("the drop has started: it can no longer be changed")


def change_drop(user_id: str, drop_id: str, changes: DropChanges) -> dict[str, Any]:
    """The drop with `changes` applied; only its owner, only before it starts."""
    drop = _fresh(user_id, drop_id)
    now = now_ms()
    _not_started(drop, now)
    new = _changed_terms(drop, changes, now)
    old_start, old_end = int(drop.start_time), int(drop.end_time)
    tx = Transaction()
    tx.update(
        "drop",
        Drop(drop_id=drop_id),
        [getattr(Drop, name).set(value) for name, value in new.items()] + [Drop.stock.set(new["initial_stock"])],
        (Drop.status == "scheduled") & (Drop.start_time > now) & (Drop.start_time == old_start),
    )
    shard_count = shard_count_of(drop)
    if shard_count > 1:
        rows = shards.new_shards(drop_id, new["initial_stock"], shard_count, new["start_time"], new["end_time"])
        for index, row in enumerate(rows):
            tx.put(f"shard{index}", row)
    if sale_mode_of(drop) in (QUEUE, DRAW):
        tx.update(
            "line",
            Line(drop_id=drop_id),
            [Line.start_time.set(new["start_time"]), Line.end_time.set(new["end_time"])],
            Line.drop_id.exists(),
        )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("drop"):
            raise DropNotEditableError("the drop has started or changed meanwhile") from None
        raise
    _forget(drop_id)
    if (new["start_time"], new["end_time"]) != (old_start, old_end):
        _move_schedules(drop_id, new["start_time"], new["end_time"])
    count("DropChanged")
    return drop_view(Drop.get(drop_id, consistent_read=True))


def _changed_terms(drop: Drop, changes: DropChanges, now: int) -> dict[str, Any]:
    """The Drop attributes `changes` sets, checked as creating the drop checks them."""
    mode = sale_mode_of(drop)
    foreign = _MODE_FIELDS.get(mode, (*_QUEUE_ONLY, *_DRAW_ONLY, "purchase_window_seconds"))
    for name in foreign:
        if getattr(changes, name) is not None:
            raise InvalidRequestError(f"{name} does not apply to a {mode} drop")
    start = _given(changes.start_time, drop.start_time)
    end = _given(changes.end_time, drop.end_time)
    stock = _given(changes.stock, drop.initial_stock)
    if start >= end:
        raise InvalidRequestError("start_time must be before end_time")
    if start <= now:
        raise InvalidRequestError("start_time must be in the future")
    limit = changes.per_user_limit if changes.per_user_limit is not None else drop.per_user_limit
    if mode == DRAW and limit not in (None, 1):
        raise InvalidRequestError("a draw sells one unit to each winner: per_user_limit must be 1")
    if limit is not None and limit > stock:
        raise InvalidRequestError("per_user_limit must not exceed stock")
    low = changes.low_stock_threshold
    if low is None:
        low = min(int(drop.low_stock_at), stock) if drop.low_stock_at is not None else max(1, stock // 10)
    if low > stock:
        raise InvalidRequestError("low_stock_threshold must not exceed stock")
    if shard_count_of(drop) > stock:
        raise InvalidRequestError("stock must not be less than the drop's stock_shards")
    terms: dict[str, Any] = {
        "start_time": start,
        "end_time": end,
        "initial_stock": stock,
        "low_stock_at": low,
    }
    if limit is not None:
        terms["per_user_limit"] = int(limit)
    if changes.purchase_window_seconds is not None:
        terms["admission_seconds"] = changes.purchase_window_seconds
    if mode == QUEUE:
        before = changes.queue_opens_before_seconds
        if before is None:
            before = (int(drop.start_time) - int(drop.opens_at)) // 1000
        terms["opens_at"] = start - before * 1000
        if changes.admissions_per_second is not None:
            terms["admissions_per_second"] = changes.admissions_per_second
    elif mode == DRAW:
        opens = _given(changes.entries_open_time, drop.opens_at)
        if opens >= start:
            raise InvalidRequestError("entries_open_time must be before start_time (the draw)")
        terms["opens_at"] = opens
    return terms


def _given(value: Any, stored: Any) -> int:
    return int(stored if value is None else value)


def _move_schedules(drop_id: str, start: int, end: int) -> None:
    schedules.unschedule_drop(drop_id)
    try:
        schedules.schedule_drop(drop_id, start, end)
    except Exception:
        # The drop's own times decide; the sweeper starts and ends it within a minute without them.
        log.exception("could not move the schedules of drop %s; the sweeper covers it", drop_id)


def _forget(drop_id: str) -> None:
    """This Lambda's cached copies of the drop (others keep theirs at most their short TTL: terms are
    cached for long only once a drop has started, and a started drop never changes)."""
    catalog.drop_cache.invalidate(drop_id)
    catalog.terms_cache.invalidate(drop_id)


# --- cancelling ----------------------------------------------------------------------------------
def cancel_drop(user_id: str, drop_id: str) -> dict[str, Any]:
    """Call the drop off: no more orders, unpaid ones cancelled, paid ones refunded."""
    drop = _fresh(user_id, drop_id)
    now = now_ms()
    if drop.status != DROP_CANCELLED:
        if drop.status == "ended" or now >= drop.end_time:
            raise DropNotEditableError("the drop has ended: it can no longer be cancelled")
        _stop_sale(drop, now)
        count("DropCancelled")
    _forget(drop_id)
    schedules.unschedule_drop(drop_id)
    settled = _settle_orders(drop_id)
    return {**drop_view(Drop.get(drop_id, consistent_read=True)), **settled}


def _stop_sale(drop: Drop, now: int) -> None:
    drop_id = drop.drop_id
    tx = Transaction()
    tx.update(
        "drop",
        Drop(drop_id=drop_id),
        [Drop.status.set(DROP_CANCELLED), Drop.end_time.set(min(int(drop.end_time), now))],
        (Drop.status != DROP_CANCELLED) & (Drop.status != DropStatus.ENDED) & (Drop.end_time > now),
    )
    for shard in range(shard_count_of(drop) if shard_count_of(drop) > 1 else 0):
        tx.update(
            f"shard{shard}",
            shards.shard_item(drop_id, shard),
            [StockShard.end_time.set(now)],
            StockShard.shard_id.exists(),
        )
    if sale_mode_of(drop) in (QUEUE, DRAW):
        tx.update("line", Line(drop_id=drop_id), [Line.end_time.set(now), Line.active.remove()], Line.drop_id.exists())
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("drop"):
            raise DropNotEditableError("the drop ended or changed meanwhile, try again") from None
        raise


def _settle_orders(drop_id: str) -> dict[str, Any]:
    """Cancel the drop's unpaid orders and refund its paid ones, page by page, within SETTLE_SECONDS."""
    deadline = time.monotonic() + SETTLE_SECONDS
    cancelled = refunded = 0
    position = None
    while time.monotonic() < deadline:
        results = Order.by_drop.query(drop_id, limit=100, last_evaluated_key=position)
        for order in orders_of([key.order_id for key in results]):
            outcome = _settle(order)
            cancelled += outcome == OrderStatus.CANCELLED
            refunded += outcome == REFUNDED
        position = results.last_evaluated_key
        if not position:
            return {"orders_cancelled": cancelled, "orders_refunded": refunded, "settling": False}
    return {"orders_cancelled": cancelled, "orders_refunded": refunded, "settling": True}


def _settle(order: Order) -> str | None:
    """Cancel or refund one order of a cancelled drop; what this call did to it."""
    if order.status == OrderStatus.PENDING_PAYMENT and release_reservation(
        order.order_id, OrderStatus.CANCELLED, order=order
    ):
        return OrderStatus.CANCELLED
    if order.status == OrderStatus.PENDING_PAYMENT:
        # Confirmed meanwhile (a payment that was on its way), or overdue (the sweeper's): read it again.
        order = load_order(order.order_id) or order
    if order.status != OrderStatus.CONFIRMED or not order.payment_ref:
        return None
    ports.payment_gateway().refund(order.payment_ref, int(order.amount_cents), f"refund-{order.order_id}")
    tx = Transaction()
    tx.update(
        "order",
        Order(order_id=order.order_id),
        [Order.status.set(REFUNDED), Order.updated_at.set(now_ms())],
        Order.status == OrderStatus.CONFIRMED,
    )
    tx.update(
        "sales",
        DropSales(drop_id=order.drop_id),
        [
            DropSales.orders_confirmed.add(-1),
            DropSales.units_sold.add(-int(order.quantity)),
            DropSales.revenue_cents.add(-int(order.amount_cents)),
            sold_in_slot(sales_slot_of(order)).add(-int(order.quantity)),
        ],
    )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("order"):
            return None  # refunded by a concurrent cancellation
        raise
    count("OrderRefunded")
    return REFUNDED
