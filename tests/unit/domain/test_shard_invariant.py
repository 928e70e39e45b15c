"""Property: whatever orders and compensations run on a sharded drop, every shard keeps
0 <= stock <= its initial stock and `stock + held == initial_stock` over the units that came from it."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.errors import LiveDropError
from chalicelib.core.statuses import RELEASED, OrderStatus
from chalicelib.domain import settlement
from chalicelib.schema import stock
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Drop, Order, StockShard
from tests.support import place_order
from tests.unit.domain.shop import examples

TOKEN = "tok_threeDSecureRequired"  # stays pending: the payments consumer leaves these orders alone
place = st.tuples(st.just("place"), st.integers(1, 3))
release = st.tuples(st.sampled_from(["decline", "expire"]), st.integers(0, 30))
steps = st.lists(st.one_of(place, place, release), min_size=1, max_size=14)


def new_sharded_drop(units: int, shards: int) -> str:
    now = now_ms()
    drop_id = f"dr_{uuid.uuid4().hex}"
    Drop(
        drop_id=drop_id,
        product_id="pr_prop",
        creator_id="cr_prop",
        start_time=now - 1000,
        end_time=now + 3_600_000,
        initial_stock=units,
        stock=units,
        stock_shards=shards,
        status="live",
        low_stock_at=1,
        price_cents=500,
        currency="EUR",
        created_at=now,
    ).save()
    for item in stock.new_shards(drop_id, units, shards, now - 1000, now + 3_600_000):
        item.save()
    return drop_id


@settings(max_examples=examples(5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units=st.integers(2, 12), shards=st.integers(2, 4), plan=steps)
def test_every_shard_keeps_its_units(units: int, shards: int, plan) -> None:
    shards = min(shards, units)
    drop_id = new_sharded_drop(units, shards)
    placed: list[str] = []
    for action, value in plan:
        if action == "place":
            try:
                result = place_order(f"u_{uuid.uuid4().hex}", "k", drop_id, value, TOKEN)
                placed.append(result.body["order_id"])
            except LiveDropError as error:
                assert error.code in ("sold_out", "insufficient_stock")
        elif placed:
            order_id = placed[value % len(placed)]
            if action == "decline":
                settlement.release_reservation(order_id, OrderStatus.PAYMENT_FAILED)
            else:
                settlement.release_reservation(order_id, OrderStatus.EXPIRED, at_ms=now_ms() + 10**9)
        items = {int(s.shard): s for s in StockShard.batch_get(
            [stock.shard_id(drop_id, n) for n in range(shards)], consistent_read=True
        )}  # fmt: skip
        held = dict.fromkeys(items, 0)
        for order_id in placed:
            order = Order.get(order_id, consistent_read=True)
            if order.status not in RELEASED:
                held[int(order.stock_shard)] += int(order.quantity)
        for shard, item in items.items():
            assert 0 <= int(item.stock) <= int(item.initial_stock)
            assert int(item.stock) + held[shard] == int(item.initial_stock)
        assert sum(int(item.stock) for item in items.values()) + sum(held.values()) == units
