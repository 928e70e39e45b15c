"""Settling an order after it was placed (chalicelib.domain.orders): pending_payment becomes confirmed when
the payment succeeds, or payment_failed or expired, giving its stock back exactly once, when it fails or
runs out of time (the sweeper expires the overdue ones). Units given back to a sold-out drop make it
live again here (chalicelib.domain.scheduling.mark_back_in_stock).
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException, UpdateError

from chalicelib.core.observability import count
from chalicelib.core.statuses import RELEASED, OrderStatus
from chalicelib.domain import scheduling
from chalicelib.domain.orders import (
    PENDING_BUCKETS,
    load_order,
    purchase_id,
    sales_slot_of,
)
from chalicelib.schema import stock
from chalicelib.schema.db import Transaction, TransactionCancelledError, now_ms
from chalicelib.schema.models import Drop, DropSales, Order, Purchase, StockShard, sold_in_slot

log = logging.getLogger("livedrop.orders")


def confirm_payment(order_id: str, payment_ref: str, at_ms: int | None = None, order: Order | None = None) -> bool:
    """pending_payment -> confirmed, unless the order was settled or its reservation ran out; True if it did.

    The drop's sales (DropSales) move in the same transaction, so they never disagree with the orders.
    `order` is the order as the caller read it (strongly consistent), which spares a read: the
    transaction's own guard on the status decides."""
    now = now_ms() if at_ms is None else at_ms
    order = order if order is not None else load_order(order_id)
    if order is None or order.status != OrderStatus.PENDING_PAYMENT:
        return False
    tx = Transaction()
    tx.update(
        "order",
        Order(order_id=order_id),
        [
            Order.status.set(OrderStatus.CONFIRMED),
            Order.payment_ref.set(payment_ref),
            Order.pending_bucket.remove(),
            Order.updated_at.set(now),
        ],
        (Order.status == OrderStatus.PENDING_PAYMENT) & (Order.expires_at >= now),
    )
    # Not the drop's row: buyers' order transactions write that one, a confirmation must not slow them.
    tx.update(
        "sales",
        DropSales(drop_id=order.drop_id),
        [
            DropSales.orders_confirmed.add(1),
            DropSales.units_sold.add(int(order.quantity)),
            DropSales.revenue_cents.add(int(order.amount_cents)),
            sold_in_slot(sales_slot_of(order)).add(int(order.quantity)),
        ],
    )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("order"):
            return False
        raise
    count("OrderConfirmed")
    return True


def confirm_payments(paid: list[tuple[Order, str]], at_ms: int | None = None) -> set[str]:
    """Confirm several pending orders, each with its payment reference, in one transaction that also
    moves their drops' sales (one DropSales update per drop): the ids it confirmed.

    All or none: when any order is no longer confirmable (settled, or its reservation ran out) or the
    transaction fails at all, nothing is confirmed and the empty set comes back, so the caller confirms
    each on its own (confirm_payment), which tells those cases apart. One call and one write per order
    plus one per drop, where confirming one by one costs a transaction of two items each."""
    now = now_ms() if at_ms is None else at_ms
    if not paid or len(paid) > 50:
        return set()
    tx = Transaction()
    sales: dict[str, list[int]] = {}
    slots: dict[str, dict[int, int]] = {}
    for order, payment_ref in paid:
        tx.update(
            f"order#{order.order_id}",
            Order(order_id=order.order_id),
            [
                Order.status.set(OrderStatus.CONFIRMED),
                Order.payment_ref.set(payment_ref),
                Order.pending_bucket.remove(),
                Order.updated_at.set(now),
            ],
            (Order.status == OrderStatus.PENDING_PAYMENT) & (Order.expires_at >= now),
        )
        figures = sales.setdefault(order.drop_id, [0, 0, 0])
        figures[0] += 1
        figures[1] += int(order.quantity)
        figures[2] += int(order.amount_cents)
        sold = slots.setdefault(order.drop_id, {})
        slot = sales_slot_of(order)
        sold[slot] = sold.get(slot, 0) + int(order.quantity)
    for drop_id, (confirmed, units, revenue) in sales.items():
        tx.update(
            f"sales#{drop_id}",
            DropSales(drop_id=drop_id),
            [
                DropSales.orders_confirmed.add(confirmed),
                DropSales.units_sold.add(units),
                DropSales.revenue_cents.add(revenue),
                *(sold_in_slot(slot).add(units) for slot, units in sorted(slots[drop_id].items())),
            ],
        )
    try:
        tx.commit()
    except Exception as error:
        log.info("confirming %d orders at once failed (%s); each is confirmed on its own", len(paid), error)
        return set()
    count("OrderConfirmed", len(paid))
    return {order.order_id for order, _ in paid}


# Which counters a release moves, on the drop's row or on its shard (chalicelib.domain.sales reads them).
_RELEASE_COUNTERS = {
    OrderStatus.PAYMENT_FAILED: (Drop.orders_failed, StockShard.orders_failed),
    OrderStatus.EXPIRED: (Drop.orders_expired, StockShard.orders_expired),
    OrderStatus.CANCELLED: (Drop.orders_cancelled, StockShard.orders_cancelled),
}


def release_reservation(order_id: str, to_status: str, at_ms: int | None = None, order: Order | None = None) -> bool:
    """Give an unpaid order's stock back and mark it payment_failed, expired or cancelled, exactly once;
    True if this call did.

    `order`, when given, is the order as the caller read it (its status guard still decides)."""
    if to_status not in RELEASED:
        raise ValueError(f"cannot release an order to {to_status}")
    now = now_ms() if at_ms is None else at_ms
    order = order if order is not None else load_order(order_id)
    if order is None or order.status != OrderStatus.PENDING_PAYMENT:
        return False
    guard = Order.status == OrderStatus.PENDING_PAYMENT
    if to_status == OrderStatus.EXPIRED:
        if order.expires_at >= now:
            return False
        guard = guard & (Order.expires_at < now)
    elif to_status == OrderStatus.CANCELLED:
        if order.expires_at < now:
            return False  # the sweeper's to expire
        guard = guard & (Order.expires_at >= now)
    quantity = int(order.quantity)
    tx = Transaction()
    tx.update(
        "order",
        Order(order_id=order_id),
        [Order.status.set(to_status), Order.pending_bucket.remove(), Order.updated_at.set(now)],
        guard,
    )
    if order.stock_shard is None:
        settled = _RELEASE_COUNTERS[OrderStatus(to_status)][0]
        tx.update(
            "drop",
            Drop(drop_id=order.drop_id),
            [Drop.stock.set(Drop.stock + quantity), settled.add(1)],
            Drop.drop_id.exists(),
        )
    else:
        # Back to the shard it came from, so every shard keeps stock + held == its initial stock; the
        # creator's counters of a sharded drop live on its shards too (chalicelib.domain.sales adds them up).
        counted = _RELEASE_COUNTERS[OrderStatus(to_status)][1]
        tx.update(
            "drop",
            stock.shard_item(order.drop_id, int(order.stock_shard)),
            [StockShard.stock.set(StockShard.stock + quantity), counted.add(1)],
            StockShard.shard_id.exists(),
        )
    if order.counts_purchase is not False:
        tx.update(
            "purchase",
            Purchase(purchase_id=purchase_id(order.drop_id, order.user_id)),
            [Purchase.quantity.set(Purchase.quantity - quantity)],
            Purchase.purchase_id.exists(),
        )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("order"):
            return False  # settled meanwhile (confirmed, or released by another worker)
        raise
    count("OrderReleased_" + to_status)
    # Units came back: a sold-out drop is live again. A conditional update, so a repeat moves nothing; if
    # it fails after the commit, the release stands (its caller is not failed for it) and the sweeper
    # moves the status within a minute (reads derive it meanwhile).
    try:
        scheduling.mark_back_in_stock(order.drop_id, now)
    except (PynamoDBException, BotoCoreError, ClientError) as error:
        log.warning("drop %s stays sold_out until the sweeper's next run: %s", order.drop_id, error)
    return True


def note_payment_retrying(order_id: str, at_ms: int | None = None) -> None:
    """The provider failed to process the order's charge (a transient error): count the attempt, so the
    buyer sees `payment_retrying` while it is retried (only on a pending order)."""
    now = now_ms() if at_ms is None else at_ms
    try:
        Order(order_id=order_id).update(
            [Order.payment_retries.set((Order.payment_retries | 0) + 1), Order.updated_at.set(now)],
            condition=Order.status == OrderStatus.PENDING_PAYMENT,
        )
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise


def expire_overdue(at_ms: int | None = None, max_orders: int = 1000) -> int:
    """Expire unpaid reservations whose expires_at has passed (the sweeper calls this); returns how many.

    An order (or a bucket's query) that fails, throttled say, is logged and left for the next run: the
    others are still expired, so one hot item never keeps a whole sweep's units out of stock."""
    now = now_ms() if at_ms is None else at_ms
    expired = failed = 0
    for bucket in PENDING_BUCKETS:
        try:
            overdue = list(Order.pending_by_expiry.query(bucket, Order.expires_at < now, limit=max_orders))
        except Exception:
            log.exception("could not read the overdue orders of %s; the next sweep tries again", bucket)
            failed += 1
            continue
        for key in overdue:
            try:
                expired += release_reservation(key.order_id, OrderStatus.EXPIRED, now)
            except Exception:
                log.exception("could not expire order %s; the next sweep tries again", key.order_id)
                failed += 1
    if failed:
        count("SweepFailures", failed)
    return expired
