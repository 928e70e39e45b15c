"""Orders on the orders functions themselves, beside the invariant property: the drop's clock decides,
a replay answers the first placement, only the buyer reads an order, and overdue reservations expire
once, giving their units back (sales figures follow)."""

from __future__ import annotations

import pytest

from chalicelib.core.errors import (
    DropEndedError,
    DropNotFoundError,
    DropNotStartedError,
    IdempotencyKeyReusedError,
    OrderNotFoundError,
    SoldOutError,
)
from chalicelib.core.statuses import OrderStatus
from chalicelib.domain import orders, sales, settlement
from chalicelib.schema.models import Drop, Order
from tests.unit.domain.shop import HOUR_MS, MINUTE_MS, new_drop, new_shop, new_user, order

PENDING = "tok_threeDSecureRequired"  # a token the fake provider leaves pending


@pytest.fixture(scope="module")
def shop():
    return new_shop()


def stock_of(drop_id: str) -> int:
    return int(Drop.get(drop_id, consistent_read=True).stock)


def test_the_clock_decides_before_the_start_and_after_the_end(shop) -> None:
    later = new_drop(shop, 10 * MINUTE_MS, HOUR_MS)["drop_id"]
    with pytest.raises(DropNotStartedError):
        order(new_user(), later)
    over = new_drop(shop, -MINUTE_MS, HOUR_MS)["drop_id"]
    Drop(drop_id=over).update(actions=[Drop.end_time.set(1)])  # as if its hour had passed
    with pytest.raises(DropEndedError):
        order(new_user(), over)
    assert stock_of(later) == 10 and stock_of(over) == 10


def test_a_replay_answers_the_first_order_and_a_changed_request_is_refused(shop) -> None:
    drop_id = new_drop(shop, stock=2)["drop_id"]
    user = new_user()
    first = order(user, drop_id, 2, key="k1", token=PENDING)
    again = order(user, drop_id, 2, key="k1", token=PENDING)
    assert again.replayed and again.order == first.order and stock_of(drop_id) == 0
    with pytest.raises(IdempotencyKeyReusedError):
        order(user, drop_id, 1, key="k1", token=PENDING)
    with pytest.raises(SoldOutError):  # the same key for another user is another order
        order(new_user(), drop_id, 1, key="k1", token=PENDING)


def test_only_the_buyer_reads_an_order(shop) -> None:
    drop_id = new_drop(shop)["drop_id"]
    user = new_user()
    order_id = order(user, drop_id, token=PENDING).order["order_id"]
    assert orders.get_order(user, order_id)["order_id"] == order_id
    assert [item["order_id"] for item in orders.list_orders(user, 10, None)["items"]] == [order_id]
    with pytest.raises(OrderNotFoundError):
        orders.get_order(new_user(), order_id)
    assert orders.list_orders(new_user(), 10, None)["items"] == []


def test_an_overdue_reservation_expires_once_and_gives_its_units_back(shop) -> None:
    drop_id = new_drop(shop, stock=3)["drop_id"]
    kept = order(new_user(), drop_id, token=PENDING).order["order_id"]
    lapsed = order(new_user(), drop_id, 2, token=PENDING).order["order_id"]
    assert settlement.confirm_payment(kept, "ref")
    overdue = int(Order.get(lapsed).expires_at) + 1
    assert orders.derived_status(Order.get(lapsed), overdue) == OrderStatus.EXPIRED
    assert settlement.expire_overdue(overdue) >= 1
    assert settlement.expire_overdue(overdue) == 0  # a second sweep finds nothing
    assert Order.get(lapsed, consistent_read=True).status == OrderStatus.EXPIRED
    assert Order.get(kept, consistent_read=True).status == OrderStatus.CONFIRMED
    assert stock_of(drop_id) == 2
    assert not settlement.confirm_payment(lapsed, "late")  # a payment after expiry changes nothing


def test_a_drops_sales_are_its_owners_alone_and_count_what_is_held(shop) -> None:
    drop_id = new_drop(shop, stock=5)["drop_id"]
    order(new_user(), drop_id, 2, token=PENDING)
    figures = sales.drop_sales(shop.owner, drop_id)
    assert figures["orders"][OrderStatus.PENDING_PAYMENT] == 1 and figures["units_reserved"] == 2
    assert [row["quantity"] for row in figures["recent_orders"]] == [2]
    with pytest.raises(DropNotFoundError):  # another creator's drop is answered as if it did not exist
        sales.drop_sales(new_shop().owner, drop_id)
