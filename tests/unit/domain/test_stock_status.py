"""A drop's stored status follows its stock in the domain, never in the stream handler: the live_stock
consumer moves a drop whose stock reached zero to sold_out, the settlement that gives units back moves it
live again, each move once however often it is asked, and the stream handler only publishes."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.core.statuses import OrderStatus
from chalicelib.delivery import events, live_stock
from chalicelib.domain import scheduling, settlement
from chalicelib.schema.db import now_ms
from chalicelib.schema.messages import Envelope, EventType
from chalicelib.schema.models import Drop, Product
from tests.unit.domain.shop import new_drop, new_shop, new_user, order
from tests.unit.test_events import record

PENDING = "tok_threeDSecureRequired"  # a token the fake provider leaves pending


@pytest.fixture
def shop():
    return new_shop()  # a product per test: a product shows its latest drop's status


def live_drop(shop, **fields) -> str:
    """A drop whose start schedule has run (the unit tier has no Scheduler to fire it)."""
    drop_id = new_drop(shop, **fields)["drop_id"]
    assert scheduling.activate(drop_id)
    return str(drop_id)


def statuses(drop_id: str, product_id: str) -> tuple[str, str]:
    return Drop.get(drop_id, consistent_read=True).status, Product.get(product_id, consistent_read=True).status


def stock_changed(drop_id: str, units: int) -> Envelope:
    data = {"drop_id": drop_id, "stock": units}
    return Envelope.new(uuid.uuid4().hex, EventType.STOCK_CHANGED, now_ms(), data)


@pytest.mark.parametrize("shards", [1, 2])
def test_a_sold_out_drop_moves_once_and_a_returned_reservation_makes_it_live_again(shop, shards) -> None:
    drop_id = live_drop(shop, stock=2, stock_shards=shards)
    held = [order(new_user(), drop_id, token=PENDING).order["order_id"] for _ in range(2)]
    assert not scheduling.mark_back_in_stock(drop_id)  # live already: nothing to move
    assert scheduling.mark_sold_out(drop_id)
    assert statuses(drop_id, shop.product_id) == ("sold_out", "sold_out")
    assert not scheduling.mark_sold_out(drop_id)  # a repeat moves nothing (sold_out announced once)
    assert settlement.release_reservation(held[0], OrderStatus.CANCELLED)
    assert statuses(drop_id, shop.product_id) == ("live", "live")
    assert not settlement.release_reservation(held[0], OrderStatus.CANCELLED)  # a retry changes nothing
    assert not scheduling.mark_back_in_stock(drop_id)
    assert statuses(drop_id, shop.product_id) == ("live", "live")


def test_a_drop_with_stock_left_is_never_marked_sold_out(shop) -> None:
    drop_id = live_drop(shop, stock=2, stock_shards=2)
    order(new_user(), drop_id, token=PENDING)
    assert not scheduling.mark_sold_out(drop_id)
    plain = live_drop(shop, stock=2)
    assert not scheduling.mark_sold_out(plain)
    assert Drop.get(drop_id).status == Drop.get(plain).status == "live"


def test_the_live_stock_consumer_moves_an_emptied_drop_to_sold_out_even_unwatched(shop) -> None:
    drop_id = live_drop(shop, stock=1)
    live_stock.stock_changed(stock_changed(drop_id, 1))
    assert Drop.get(drop_id, consistent_read=True).status == "live"
    order(new_user(), drop_id, token=PENDING)
    live_stock.stock_changed(stock_changed(drop_id, 0))
    live_stock.stock_changed(stock_changed(drop_id, 0))  # redelivered
    assert statuses(drop_id, shop.product_id) == ("sold_out", "sold_out")


def test_a_stale_stock_change_of_zero_moves_nothing(shop) -> None:
    drop_id = live_drop(shop, stock=1)
    live_stock.stock_changed(stock_changed(drop_id, 0))  # older than the stock the drop holds
    assert Drop.get(drop_id, consistent_read=True).status == "live"


def test_the_stream_handler_publishes_a_sell_out_and_writes_nothing(shop, monkeypatch) -> None:
    drop_id = live_drop(shop, stock=1)
    order(new_user(), drop_id, token=PENDING)
    image = {"drop_id": drop_id, "creator_id": shop.creator_id, "product_id": shop.product_id, "status": "live"}
    sold = record("MODIFY", "drop_id", image | {"stock": 0}, image | {"stock": 1})
    published: list[Envelope] = []
    monkeypatch.setattr(events, "publish", published.extend)
    assert events.handle_stream_batch({"Records": [sold]}, None) == {"batchItemFailures": []}
    assert EventType.SOLD_OUT in [e.event_type for e in published]
    assert statuses(drop_id, shop.product_id) == ("live", "live")  # the consumer's to move, not the stream's
