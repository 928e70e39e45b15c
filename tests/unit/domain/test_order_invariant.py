"""Property: whatever sequence of orders, replays, reused keys, declines, expiries, confirmations and
retried compensations, every drop keeps `stock + held quantities == initial_stock`, stock >= 0,
and each outcome is the one a simple model of the drop predicts."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.errors import (
    IdempotencyKeyReusedError,
    InsufficientStockError,
    LiveDropError,
    PurchaseLimitExceededError,
    SoldOutError,
)
from chalicelib.core.statuses import RELEASED, OrderStatus
from chalicelib.domain import orders, settlement
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Drop, Order
from tests.support import place_order
from tests.unit.domain.shop import examples

# The fake provider leaves this token pending, so the dev stack's payments consumer stays out of the way.
TOKEN = "tok_threeDSecureRequired"
USERS = 3

place = st.tuples(st.just("place"), st.integers(0, USERS - 1), st.integers(1, 4), st.integers(0, 3))
settle = st.tuples(st.sampled_from(["decline", "expire", "confirm"]), st.integers(0, 20), st.just(0), st.just(0))
steps = st.lists(st.one_of(place, place, settle), min_size=1, max_size=12)


def new_drop(stock: int, limit: int | None) -> str:
    now = now_ms()
    drop = Drop(
        drop_id=f"dr_{uuid.uuid4().hex}",
        product_id="pr_prop",
        creator_id="cr_prop",
        start_time=now - 1000,
        end_time=now + 3_600_000,
        initial_stock=stock,
        stock=stock,
        status="live",
        per_user_limit=limit,
        low_stock_at=1,
        price_cents=500,
        currency="EUR",
        created_at=now,
    )
    drop.save()
    return str(drop.drop_id)


def expected_error(stock: int, held: int, quantity: int, limit: int | None) -> type[LiveDropError] | None:
    if stock == 0:
        return SoldOutError
    if stock < quantity:
        return InsufficientStockError
    if limit is not None and held + quantity > limit:
        return PurchaseLimitExceededError
    return None


@settings(max_examples=examples(6), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stock=st.integers(1, 8), limit=st.one_of(st.none(), st.integers(1, 4)), plan=steps)
def test_the_invariant_holds_after_every_step(stock: int, limit: int | None, plan) -> None:
    drop_id = new_drop(stock, limit)
    users = [f"u_{uuid.uuid4().hex}" for _ in range(USERS)]
    model_stock = stock
    held = dict.fromkeys(users, 0)
    keys: dict[tuple[str, int], tuple[int, str]] = {}
    placed: list[Order] = []
    status: dict[str, str] = {}

    for action, a, quantity, key_index in plan:
        if action == "place":
            user = users[a]
            key = f"k{key_index}"
            earlier = keys.get((user, key_index))
            try:
                result = place_order(user, key, drop_id, quantity, TOKEN)
            except LiveDropError as error:
                if earlier is not None:
                    assert isinstance(error, IdempotencyKeyReusedError) and earlier[0] != quantity
                else:
                    assert type(error) is expected_error(model_stock, held[user], quantity, limit)
                continue
            if earlier is not None:
                assert result.replayed and earlier == (quantity, result.body["order_id"])
                continue
            assert not result.replayed and expected_error(model_stock, held[user], quantity, limit) is None
            keys[(user, key_index)] = (quantity, result.body["order_id"])
            model_stock -= quantity
            held[user] += quantity
            placed.append(Order.get(result.body["order_id"]))
            status[result.body["order_id"]] = OrderStatus.PENDING_PAYMENT
        elif placed:
            order = placed[a % len(placed)]
            pending = status[order.order_id] == OrderStatus.PENDING_PAYMENT
            if action == "confirm":
                assert settlement.confirm_payment(order.order_id, "ref", int(order.created_at)) is pending
                status[order.order_id] = OrderStatus.CONFIRMED if pending else status[order.order_id]
            else:
                target = OrderStatus.PAYMENT_FAILED if action == "decline" else OrderStatus.EXPIRED
                at = int(order.expires_at) + 1 if action == "expire" else None
                # A retried compensation: the second call must change nothing.
                assert settlement.release_reservation(order.order_id, target, at) is pending
                assert settlement.release_reservation(order.order_id, target, at) is False
                if pending:
                    status[order.order_id] = target
                    model_stock += int(order.quantity)
                    held[order.user_id] -= int(order.quantity)

        drop = Drop.get(drop_id, consistent_read=True)
        # The index holds keys only (a confirmation rewrites no index entry): the rows are read by key.
        order_ids = [key.order_id for user in users for key in Order.by_user.query(user)]
        stored = [o for o in orders.orders_of(order_ids) if o.drop_id == drop_id]
        holding = sum(int(o.quantity) for o in stored if o.status not in RELEASED)
        assert 0 <= drop.stock == model_stock
        assert drop.stock + holding == drop.initial_stock
        assert {o.order_id: o.status for o in stored} == status
