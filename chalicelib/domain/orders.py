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

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chalicelib.core import timeline
from chalicelib.core.config import get_settings
from chalicelib.core.errors import (
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
from chalicelib.core.observability import count
from chalicelib.core.statuses import OrderStatus
from chalicelib.core.validation import check_text, format_time
from chalicelib.domain import admissions, catalog, ratelimits
from chalicelib.domain.catalog import FIRST_COME, drop_terms
from chalicelib.schema import stock
from chalicelib.schema.commands import MAX_KEY_LENGTH, NewOrder
from chalicelib.schema.db import CONFLICT_RETRIES, Transaction, TransactionCancelledError, new_id, now_ms
from chalicelib.schema.models import Admission, Drop, IdempotencyKey, Order, Purchase, StockShard
from chalicelib.schema.pagination import decode_page, page_body, render_each

log = logging.getLogger("livedrop.orders")

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
    if order.status == OrderStatus.PENDING_PAYMENT and now > order.expires_at:
        return OrderStatus.EXPIRED
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
    if status == OrderStatus.PENDING_PAYMENT and getattr(order, "payment_retries", None):
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
        status=OrderStatus.PENDING_PAYMENT,
        idempotency_key=key,
        request_hash=digest,
        payment_token=payment_token,
        pending_bucket=pending_bucket(order_id),
        created_at=now,
        expires_at=now + settings.reservation_seconds * 1000,
        counts_purchase=limit is not None,
        shipping_address=shipping,
        sales_slot=timeline.slot_of(terms.start_time, terms.end_time, now),
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


def sales_slot_of(order: Order) -> int:
    """The slot of its drop's sale an order counts in (chalicelib.core.timeline): the one fixed when it
    was placed, or, for an order stored before that, the slot of its created_at."""
    if order.sales_slot is not None:
        return int(order.sales_slot)
    terms = drop_terms(order.drop_id)
    return timeline.slot_of(terms.start_time, terms.end_time, int(order.created_at))
