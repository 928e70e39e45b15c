"""Orders that never oversell: one TransactWriteItems reserves stock, counts the buyer's units, writes
the order and its idempotency key; payment settles it later, or a guarded compensation gives the
stock back exactly once (payment_failed, expired).

Idempotency keys are per user (`user_id#key`) and live `settings.idempotency_key_hours` (24 by
default): within that time the same key replays the first answer, after it the key is free again.
What a key replays is the order as first placed (the domain result); the edge decides the status.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib import admissions, catalog, ratelimits, stock
from chalicelib.catalog import FIRST_COME, drop_terms
from chalicelib.commands import MAX_KEY_LENGTH, NewOrder
from chalicelib.config import get_settings
from chalicelib.db import CONFLICT_RETRIES, Transaction, TransactionCancelledError, new_id, now_ms
from chalicelib.errors import (
    AdmissionRequiredError,
    DropEndedError,
    DropNotFoundError,
    DropNotStartedError,
    IdempotencyKeyReusedError,
    InsufficientStockError,
    InvalidPageError,
    InvalidRequestError,
    LiveDropError,
    MissingIdempotencyKeyError,
    OrderNotFoundError,
    PurchaseLimitExceededError,
    SoldOutError,
    TryAgainError,
)
from chalicelib.models import Admission, Drop, DropSales, IdempotencyKey, Order, Purchase, StockShard
from chalicelib.observability import count
from chalicelib.pagination import decode_page, page_body, render_each
from chalicelib.validation import check_text, format_time

log = logging.getLogger("livedrop.orders")

PENDING = "pending_payment"
CONFIRMED = "confirmed"
PAYMENT_FAILED = "payment_failed"
EXPIRED = "expired"
CANCELLED = "cancelled"  # by the buyer, before payment (chalicelib.order_changes)
RELEASED = (PAYMENT_FAILED, EXPIRED, CANCELLED)
# Pending orders spread over a few GSI partitions so a hot drop's reservations do not all write one
# index partition; the sweeper queries each bucket.
PENDING_BUCKETS = tuple(f"pending#{n}" for n in range(4))
SHARD_CONFLICT_RETRIES = 1
_ORDERS_PAGE = {"order_id": "S", "user_id": "S", "created_at": "N"}


@dataclass(frozen=True)
class PlacedOrder:
    """A placed order (its view), and whether this call replays the key's first placement."""

    order: dict[str, Any]
    replayed: bool = False


def idempotency_key_from(header: str | None) -> str:
    """The Idempotency-Key header's value: MissingIdempotencyKeyError when absent or empty."""
    if header is None or header == "":
        raise MissingIdempotencyKeyError("the Idempotency-Key header is required")
    if len(header) > MAX_KEY_LENGTH:
        raise InvalidRequestError(f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters")
    return check_text("Idempotency-Key", header)


def request_hash(drop_id: str, quantity: int, payment_token: str, shipping: str | None = None) -> str:
    """A digest of an order request's body, to tell a replay from a reused key."""
    fields: dict[str, Any] = {"drop_id": drop_id, "quantity": quantity, "payment_token": payment_token}
    if shipping is not None:  # only when sent, so the digests of orders without one stay as they were
        fields["shipping_address"] = shipping
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def shipping_json(new: NewOrder) -> str | None:
    """The order's shipping address as stored (JSON without the fields left out), or None."""
    if new.shipping_address is None:
        return None
    fields = {k: v for k, v in asdict(new.shipping_address).items() if v is not None}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def pending_bucket(order_id: str) -> str:
    """The sparse pending_by_expiry partition an order waits in while unpaid."""
    return PENDING_BUCKETS[zlib.crc32(order_id.encode()) % len(PENDING_BUCKETS)]


def derived_status(order: Order, at_ms: int | None = None) -> str:
    """The status a reader sees: an unpaid reservation past expires_at is expired, swept or not."""
    now = now_ms() if at_ms is None else at_ms
    if order.status == PENDING and now > order.expires_at:
        return EXPIRED
    return str(order.status)


def order_view(order: Order, at_ms: int | None = None) -> dict[str, Any]:
    """An order as the API shows it; `payment_retrying` only while a transient charge failure is retried."""
    status = derived_status(order, at_ms)
    view = {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "drop_id": order.drop_id,
        "quantity": int(order.quantity),
        "amount_cents": int(order.amount_cents),
        "currency": order.currency,
        "status": status,
        "created_at": format_time(order.created_at),
        "expires_at": format_time(order.expires_at),
    }
    if status == PENDING and getattr(order, "payment_retries", None):
        view["payment_retrying"] = True
    if order.shipping_address:
        view["shipping_address"] = json.loads(order.shipping_address)
    return view


def place_order(user_id: str, key: str, new: NewOrder) -> PlacedOrder:
    """Reserve `quantity` units of a drop for `user_id` in one transaction, or replay the key's first answer."""
    drop_id, quantity, payment_token = new.drop_id, new.quantity, new.payment_token
    settings = get_settings()
    terms = drop_terms(drop_id)
    now = now_ms()
    # A draw whose order ran out with units left sells them first-come (docs/sale-modes.md).
    admitted = terms.sale_mode != FIRST_COME and not (new.admission_token is None and catalog.released(drop_id))
    # One admission is one purchase of at most the per-user limit (one unit unless the drop says more).
    limit = terms.per_user_limit if terms.per_user_limit is not None or not admitted else 1
    if admitted:
        admissions.verify_token(new.admission_token, user_id, drop_id, now)
    elif new.admission_token is not None:
        raise InvalidRequestError("admission_token is only for queue and draw drops")
    shipping = shipping_json(new)
    digest = request_hash(drop_id, quantity, payment_token, shipping)
    order_id = new_id("or")
    order = Order(
        order_id=order_id,
        user_id=user_id,
        drop_id=drop_id,
        quantity=quantity,
        amount_cents=terms.price_cents * quantity,
        currency=terms.currency,
        status=PENDING,
        idempotency_key=key,
        request_hash=digest,
        payment_token=payment_token,
        pending_bucket=pending_bucket(order_id),
        created_at=now,
        expires_at=now + settings.reservation_seconds * 1000,
        counts_purchase=limit is not None,
        shipping_address=shipping,
    )
    key_id = f"{user_id}#{key}"
    expires = datetime.fromtimestamp(now // 1000 + settings.idempotency_key_hours * 3600, UTC)
    tried: set[int] = set()
    busy = False
    while True:
        shard = None
        if terms.stock_shards > 1:
            shard = stock.pick(drop_id, terms.stock_shards, quantity, tried)
            if shard is None:
                if busy:  # a shard with stock was only busy: not sold out, just hot
                    count("OrderRejected_try_again")
                    raise TryAgainError("the drop is busy, try again")
                raise _rejected(_short_of_stock(drop_id, terms.stock_shards, quantity))
            tried.add(shard)
            order.stock_shard = shard
        body = order_view(order, now)
        record = IdempotencyKey(
            key_id=key_id,
            order_id=order_id,
            request_hash=digest,
            response_body=json.dumps(body, separators=(",", ":")),
            ttl=expires,
        )
        tx = Transaction()
        _take_stock(tx, drop_id, shard, quantity, now)
        if limit is not None:
            # Only a limit needs the buyer's count: a drop without one spares every order this write.
            tx.update(
                "purchase",
                Purchase(purchase_id=purchase_id(drop_id, user_id)),
                [Purchase.quantity.set((Purchase.quantity | 0) + quantity)],
                _within_limit(limit, quantity),
            )
        tx.put("order", order, Order.order_id.does_not_exist())
        # DynamoDB's TTL deletes late (up to days): a key past its ttl counts as free here already.
        key_free = IdempotencyKey.key_id.does_not_exist() | (
            IdempotencyKey.ttl < datetime.fromtimestamp(now // 1000, UTC)
        )
        tx.put("idempotency_key", record, key_free, return_old=True)
        # The user's own rate-limit counter: a limit without another call and without a hot item.
        counter, actions, within = ratelimits.counter(ratelimits.ORDERS, user_id, now)
        tx.update("rate", counter, actions, within)
        if admitted:
            tx.update(
                "admission",
                Admission(drop_id=drop_id, user_id=user_id),
                [Admission.bought.set(quantity)],
                # Its first purchase closes an admission: `bought` is its state, checked here.
                Admission.admitted_at.exists()
                & (Admission.bought.does_not_exist() | (Admission.bought == 0))
                & (Admission.admission_expires > now),
            )
        try:
            # A sharded order that keeps conflicting on its shard moves to another rather than waiting.
            tx.commit(retries=CONFLICT_RETRIES if shard is None else SHARD_CONFLICT_RETRIES)
        except TransactionCancelledError as cancelled:
            if shard is not None and _shard_short(cancelled, drop_id, shard, quantity, now):
                continue  # another shard may still hold enough
            return _explain(cancelled, key_id, digest, drop_id, quantity, now)
        except TryAgainError:
            if shard is not None:
                busy = True
                continue
            count("OrderRejected_try_again")
            raise
        count("OrderPlaced")
        return PlacedOrder(body)


def _take_stock(tx: Transaction, drop_id: str, shard: int | None, quantity: int, now: int) -> None:
    """The stock decrement, on the drop's row or on one of its shards, with the clock checked on that item."""
    if shard is None:
        tx.update(
            "drop",
            Drop(drop_id=drop_id),
            [Drop.stock.set(Drop.stock - quantity), Drop.orders_placed.add(1)],
            (Drop.stock >= quantity) & (Drop.start_time <= now) & (Drop.end_time > now),
            return_old=True,
        )
        return
    tx.update(
        "drop",
        stock.shard_item(drop_id, shard),
        [StockShard.stock.set(StockShard.stock - quantity), StockShard.orders_placed.add(1)],
        (StockShard.stock >= quantity) & (StockShard.start_time <= now) & (StockShard.end_time > now),
        return_old=True,
    )


def _shard_short(cancelled: TransactionCancelledError, drop_id: str, shard: int, quantity: int, now: int) -> bool:
    """Whether a sharded order failed only because its shard was short (and the clock allowed it)."""
    if set(cancelled.reasons.values()) - {"None", "ConditionalCheckFailed"} or not cancelled.failed("drop"):
        return False
    if any(cancelled.failed(label) for label in ("idempotency_key", "rate", "purchase", "admission")):
        return False
    raw = cancelled.old_item("drop")
    if not raw:
        return False
    item = StockShard.from_raw_data(raw)
    if not item.start_time <= now < item.end_time:
        return False
    stock.observed(drop_id, shard, int(item.stock))
    return int(item.stock) < quantity


def _short_of_stock(drop_id: str, shards: int, quantity: int) -> LiveDropError:
    """Every shard was tried: sold out, or no shard holds `quantity` units in one piece."""
    left = stock.total(drop_id, shards, fresh=True)
    if left <= 0:
        return SoldOutError("the drop is sold out")
    largest = max(stock.levels(drop_id, shards).values(), default=0)
    return InsufficientStockError(f"only {left} left, at most {largest} in one order")


def purchase_id(drop_id: str, user_id: str) -> str:
    return f"{drop_id}#{user_id}"


def _within_limit(limit: int | None, quantity: int) -> Condition | None:
    if limit is None:
        return None
    if quantity > limit:
        # Can never pass; kept inside the transaction so a reused key is still told apart first.
        return Purchase.quantity <= limit - quantity
    return Purchase.purchase_id.does_not_exist() | (Purchase.quantity <= limit - quantity)


def _explain(
    cancelled: TransactionCancelledError, key_id: str, digest: str, drop_id: str, quantity: int, now: int
) -> PlacedOrder:
    """Turn a cancelled order transaction into a replay or the docs/api.md error, reading only when
    DynamoDB did not hand back the item that failed."""
    if cancelled.failed("idempotency_key"):
        raw = cancelled.old_item("idempotency_key")
        stored = IdempotencyKey.from_raw_data(raw) if raw else _stored_key(key_id)
        if stored.request_hash != digest:
            raise _rejected(IdempotencyKeyReusedError("this Idempotency-Key was used with another request"))
        count("OrderReplayed")
        return PlacedOrder(json.loads(stored.response_body), replayed=True)
    if cancelled.failed("drop"):
        raw = cancelled.old_item("drop")
        drop = Drop.from_raw_data(raw) if raw else _stored_drop(drop_id)
        if now < drop.start_time:
            raise _rejected(DropNotStartedError("the drop has not started yet"))
        if now >= drop.end_time:
            raise _rejected(DropEndedError("the drop has ended"))
        if drop.stock <= 0:
            raise _rejected(SoldOutError("the drop is sold out"))
        if drop.stock < quantity:
            raise _rejected(InsufficientStockError(f"only {int(drop.stock)} left"))
    if cancelled.failed("rate"):
        raise _rejected(ratelimits.limited(ratelimits.ORDERS, now))
    if cancelled.failed("admission"):
        raise _rejected(AdmissionRequiredError("no open admission: not admitted, or it was used or has expired"))
    if cancelled.failed("purchase"):
        raise _rejected(PurchaseLimitExceededError("this would exceed the drop's per-user limit"))
    # A condition that held again by the time it was read back: the caller may simply retry.
    raise _rejected(TryAgainError("the drop changed while ordering, try again"))


def _rejected(error: LiveDropError) -> LiveDropError:
    count(f"OrderRejected_{error.code}")
    return error


def _stored_key(key_id: str) -> IdempotencyKey:
    try:
        return IdempotencyKey.get(key_id, consistent_read=True)
    except DoesNotExist:
        raise TryAgainError("the key changed while ordering, try again") from None


def _stored_drop(drop_id: str) -> Drop:
    try:
        return Drop.get(drop_id, consistent_read=True)
    except DoesNotExist:
        raise DropNotFoundError("no such drop") from None


# --- reads --------------------------------------------------------------------------------------
def get_order(user_id: str, order_id: str) -> dict[str, Any]:
    """GET /orders/{id}: the caller's order; anyone else's is OrderNotFoundError, as if it did not exist."""
    try:
        order = Order.get(order_id)
    except DoesNotExist:
        raise OrderNotFoundError("no such order") from None
    if order.user_id != user_id:
        raise OrderNotFoundError("no such order")
    return order_view(order)


def list_orders(user_id: str, limit: int, page: str | None) -> dict[str, Any]:
    """GET /users/{id}/orders: the user's orders, newest first."""
    start = decode_page(page, _ORDERS_PAGE)
    if start is not None and start["user_id"]["S"] != user_id:
        raise InvalidPageError("page belongs to another listing")
    results = Order.by_user.query(user_id, scan_index_forward=False, limit=limit, last_evaluated_key=start)
    now = now_ms()
    items = render_each(orders_of([key.order_id for key in results]), lambda order: order_view(order, now))
    return page_body(items, results.last_evaluated_key)


def orders_of(order_ids: list[str]) -> list[Order]:
    """The orders of ids read from a keys-only Orders index, in that order (one BatchGetItem per 100).

    The Orders indexes project keys only, so a confirmation, which changes the status, rewrites none of
    them: the rows are read here instead."""
    found = {order.order_id: order for order in Order.batch_get(order_ids)} if order_ids else {}
    return [found[order_id] for order_id in order_ids if order_id in found]


def load_order(order_id: str) -> Order | None:
    """The stored order (strongly consistent), or None."""
    try:
        return Order.get(order_id, consistent_read=True)
    except DoesNotExist:
        return None


# --- settlement ---------------------------------------------------------------------------------
def confirm_payment(order_id: str, payment_ref: str, at_ms: int | None = None, order: Order | None = None) -> bool:
    """pending_payment -> confirmed, unless the order was settled or its reservation ran out; True if it did.

    The drop's sales (DropSales) move in the same transaction, so they never disagree with the orders.
    `order` is the order as the caller read it (strongly consistent), which spares a read: the
    transaction's own guard on the status decides."""
    now = now_ms() if at_ms is None else at_ms
    order = order if order is not None else load_order(order_id)
    if order is None or order.status != PENDING:
        return False
    tx = Transaction()
    tx.update(
        "order",
        Order(order_id=order_id),
        [
            Order.status.set(CONFIRMED),
            Order.payment_ref.set(payment_ref),
            Order.pending_bucket.remove(),
            Order.updated_at.set(now),
        ],
        (Order.status == PENDING) & (Order.expires_at >= now),
    )
    # Not the drop's row: buyers' order transactions write that one, a confirmation must not slow them.
    tx.update(
        "sales",
        DropSales(drop_id=order.drop_id),
        [
            DropSales.orders_confirmed.add(1),
            DropSales.units_sold.add(int(order.quantity)),
            DropSales.revenue_cents.add(int(order.amount_cents)),
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
    for order, payment_ref in paid:
        tx.update(
            f"order#{order.order_id}",
            Order(order_id=order.order_id),
            [
                Order.status.set(CONFIRMED),
                Order.payment_ref.set(payment_ref),
                Order.pending_bucket.remove(),
                Order.updated_at.set(now),
            ],
            (Order.status == PENDING) & (Order.expires_at >= now),
        )
        figures = sales.setdefault(order.drop_id, [0, 0, 0])
        figures[0] += 1
        figures[1] += int(order.quantity)
        figures[2] += int(order.amount_cents)
    for drop_id, (confirmed, units, revenue) in sales.items():
        tx.update(
            f"sales#{drop_id}",
            DropSales(drop_id=drop_id),
            [
                DropSales.orders_confirmed.add(confirmed),
                DropSales.units_sold.add(units),
                DropSales.revenue_cents.add(revenue),
            ],
        )
    try:
        tx.commit()
    except Exception as error:
        log.info("confirming %d orders at once failed (%s); each is confirmed on its own", len(paid), error)
        return set()
    count("OrderConfirmed", len(paid))
    return {order.order_id for order, _ in paid}


# Which counters a release moves, on the drop's row or on its shard (chalicelib.sales reads them).
_RELEASE_COUNTERS = {
    PAYMENT_FAILED: (Drop.orders_failed, StockShard.orders_failed),
    EXPIRED: (Drop.orders_expired, StockShard.orders_expired),
    CANCELLED: (Drop.orders_cancelled, StockShard.orders_cancelled),
}


def release_reservation(order_id: str, to_status: str, at_ms: int | None = None, order: Order | None = None) -> bool:
    """Give an unpaid order's stock back and mark it payment_failed, expired or cancelled, exactly once;
    True if this call did.

    `order`, when given, is the order as the caller read it (its status guard still decides)."""
    if to_status not in RELEASED:
        raise ValueError(f"cannot release an order to {to_status}")
    now = now_ms() if at_ms is None else at_ms
    order = order if order is not None else load_order(order_id)
    if order is None or order.status != PENDING:
        return False
    guard = Order.status == PENDING
    if to_status == EXPIRED:
        if order.expires_at >= now:
            return False
        guard = guard & (Order.expires_at < now)
    elif to_status == CANCELLED:
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
        settled = _RELEASE_COUNTERS[to_status][0]
        tx.update(
            "drop",
            Drop(drop_id=order.drop_id),
            [Drop.stock.set(Drop.stock + quantity), settled.add(1)],
            Drop.drop_id.exists(),
        )
    else:
        # Back to the shard it came from, so every shard keeps stock + held == its initial stock; the
        # creator's counters of a sharded drop live on its shards too (chalicelib.sales adds them up).
        counted = _RELEASE_COUNTERS[to_status][1]
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
    return True


def note_payment_retrying(order_id: str, at_ms: int | None = None) -> None:
    """The provider failed to process the order's charge (a transient error): count the attempt, so the
    buyer sees `payment_retrying` while it is retried (only on a pending order)."""
    now = now_ms() if at_ms is None else at_ms
    try:
        Order(order_id=order_id).update(
            [Order.payment_retries.set((Order.payment_retries | 0) + 1), Order.updated_at.set(now)],
            condition=Order.status == PENDING,
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
                expired += release_reservation(key.order_id, EXPIRED, now)
            except Exception:
                log.exception("could not expire order %s; the next sweep tries again", key.order_id)
                failed += 1
    if failed:
        count("SweepFailures", failed)
    return expired
