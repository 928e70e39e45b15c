"""What the domain answers is what chalicelib/schema/responses.py declares for the route that serves it:
each answer here is checked against the OpenAPI document's schema for that route and status (every
object closed), so a key added, dropped or retyped in a view fails before any stack starts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.delivery import notifications
from chalicelib.domain import accounts, catalog, drop_changes, follows, lines, order_changes, orders, preferences, sales
from chalicelib.domain.drop_listing import list_drops
from chalicelib.domain.fulfilment import buyers
from chalicelib.schema.commands import DropChanges
from tests.contract import drift
from tests.unit.domain.shop import HOUR_MS, MINUTE_MS, Shop, examples, new_drop, new_shop, new_user, order


def assert_declared(method: str, route: str, status: int, body: Any) -> None:
    wire = json.loads(json.dumps(body))  # as json_response sends it: enums as their values
    assert drift(method, route, status, wire) == []


@pytest.fixture(scope="module")
def shop() -> Shop:
    return new_shop()


@settings(max_examples=examples(4), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mode=st.sampled_from(["first_come", "queue", "draw"]),
    shards=st.integers(1, 3),
    per_user_limit=st.none() | st.integers(1, 5),
    low_stock_threshold=st.none() | st.integers(0, 3),
)
def test_a_drop_is_its_declared_type_on_every_route_that_shows_it(
    shop: Shop, mode: str, shards: int, per_user_limit: int | None, low_stock_threshold: int | None
) -> None:
    settings_of_mode = {"first_come": {}, "queue": {"queue_opens_before_seconds": 60}, "draw": {}}[mode]
    if mode == "draw" and per_user_limit is not None:
        per_user_limit = 1  # a draw sells one unit to each winner
    created = new_drop(
        shop,
        10 * MINUTE_MS,
        HOUR_MS,
        sale_mode=mode,
        stock_shards=shards,
        per_user_limit=per_user_limit,
        low_stock_threshold=low_stock_threshold,
        **settings_of_mode,
    )
    drop_id = created["drop_id"]
    assert_declared("POST", "/creators/{creator_id}/drops", 201, created)
    assert_declared("GET", "/drops/{drop_id}", 200, catalog.get_drop(drop_id))
    assert_declared("GET", "/products/{product_id}", 200, catalog.get_product(shop.product_id))
    assert_declared("GET", "/drops/{drop_id}/sales", 200, sales.drop_sales(shop.owner, drop_id))
    assert_declared(
        "PATCH", "/drops/{drop_id}", 200, drop_changes.change_drop(shop.owner, drop_id, DropChanges(stock=7))
    )
    assert_declared("POST", "/drops/{drop_id}/cancel", 200, drop_changes.cancel_drop(shop.owner, drop_id))


def test_lists_of_drops_products_and_creators_are_their_declared_pages(shop: Shop) -> None:
    new_drop(shop)
    assert_declared("GET", "/drops", 200, list_drops(None, 20, None))
    assert_declared("GET", "/products", 200, catalog.list_products(None, 20, None))
    assert_declared(
        "GET", "/creators/{creator_id}/drops", 200, sales.creator_drops(shop.owner, shop.creator_id, 20, None)
    )
    assert_declared("GET", "/creators/{creator_id}", 200, accounts.creator_view(accounts.get_creator(shop.creator_id)))


def test_an_order_is_its_declared_type_from_placement_to_cancellation(shop: Shop) -> None:
    drop_id = new_drop(shop)["drop_id"]
    buyer = new_user()
    placed = order(buyer, drop_id).order
    assert_declared("POST", "/orders", 201, placed)
    assert_declared("GET", "/orders/{order_id}", 200, orders.get_order(buyer, placed["order_id"]))
    assert_declared("GET", "/users/{user_id}/orders", 200, orders.list_orders(buyer, 20, None))
    assert_declared("POST", "/orders/{order_id}/cancel", 200, order_changes.cancel_order(buyer, placed["order_id"]))
    assert_declared("GET", "/drops/{drop_id}/buyers", 200, buyers(shop.owner, drop_id, 20, None))
    assert_declared("GET", "/drops/{drop_id}/sales", 200, sales.drop_sales(shop.owner, drop_id))


def test_a_place_in_a_queue_or_a_draw_is_its_declared_type(shop: Shop) -> None:
    queue = new_drop(shop, 10 * MINUTE_MS, HOUR_MS, sale_mode="queue", queue_opens_before_seconds=900)
    draw = new_drop(shop, 10 * MINUTE_MS, HOUR_MS, sale_mode="draw")
    user = new_user()
    place, _ = lines.join_queue(user, queue["drop_id"])
    assert_declared("POST", "/drops/{drop_id}/queue", 201, place)
    assert_declared("GET", "/drops/{drop_id}/queue/me", 200, lines.my_place(user, queue["drop_id"], catalog.QUEUE))
    entry, _ = lines.enter_draw(user, draw["drop_id"])
    assert_declared("POST", "/drops/{drop_id}/entries", 201, entry)
    assert_declared("GET", "/drops/{drop_id}/entries/me", 200, lines.my_place(user, draw["drop_id"], catalog.DRAW))
    assert_declared("GET", "/drops/{drop_id}/entries", 200, lines.list_entries(draw["drop_id"], 20, None))


def test_a_users_follows_inbox_and_settings_are_their_declared_types(shop: Shop) -> None:
    fan = new_user()
    assert_declared("GET", "/me", 200, accounts.me(fan))
    assert_declared("POST", "/creators/{creator_id}/follow", 200, follows.follow(fan, shop.creator_id))
    assert_declared("GET", "/users/{user_id}/following", 200, follows.list_following(fan, 20, None))
    assert_declared("GET", "/creators/{creator_id}/followers", 200, follows.list_followers(shop.creator_id, 20, None))
    assert_declared("GET", "/users/{user_id}/notifications", 200, notifications.inbox(fan, 20, None))
    assert_declared("POST", "/users/{user_id}/notifications/read", 200, notifications.mark_read(fan, up_to_ms=0))
    assert_declared("GET", "/users/{user_id}/notification-settings", 200, preferences.get(fan))
