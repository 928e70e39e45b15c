"""A creator changes a drop before its start, or cancels it (docs/api.md "Drops")."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.delivery import payments
from chalicelib.domain import scheduling
from chalicelib.schema import schedules
from chalicelib.schema import stock as shards
from chalicelib.schema.models import Drop, Line, StockShard
from tests.api import test_orders
from tests.api.test_orders import error_code, order
from tests.support import iso, wait_for

shop = test_orders.shop
make_drop = test_orders.make_drop


def patch(api, user, drop_id: str, body):
    return api.call("PATCH", f"/drops/{drop_id}", user.token, json=body)


def schedule_input(drop_id: str, action: str) -> dict | None:
    client = aws.client("scheduler")
    try:
        found = client.get_schedule(
            Name=schedules.schedule_name(drop_id, action), GroupName=get_settings().scheduler_group
        )
    except client.exceptions.ResourceNotFoundException:
        return None
    return json.loads(found["Target"]["Input"])


def test_the_owner_reschedules_and_restocks_a_drop_before_it_starts(api, new_user, shop, make_drop) -> None:
    owner = shop[0]
    drop = make_drop(stock=10, start=600, end=3600, per_user_limit=2)
    changed = patch(api, owner, drop["drop_id"], {"start_time": iso(1200), "end_time": iso(7200), "stock": 30,
                                                   "per_user_limit": 3, "low_stock_threshold": 5})  # fmt: skip
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["stock"], body["initial_stock"], body["per_user_limit"], body["low_stock_threshold"]) == (30, 30, 3, 5)
    assert body["start_time"] > drop["start_time"] and body["status"] == "scheduled"
    stored = Drop.get(drop["drop_id"], consistent_read=True)
    # The schedules moved with the times.
    assert schedule_input(drop["drop_id"], "start")["at"] == int(stored.start_time)
    assert schedule_input(drop["drop_id"], "end")["at"] == int(stored.end_time)
    assert api.get(f"/drops/{drop['drop_id']}").json()["stock"] == 30 or wait_for(
        lambda: api.get(f"/drops/{drop['drop_id']}").json()["stock"] == 30
    )
    # Others: 404, as for the sales view; no body, another mode's settings, inconsistent times: 400.
    refused = patch(api, new_user(creator=True), drop["drop_id"], {"stock": 1})
    assert refused.status_code == 404 and error_code(refused) == "drop_not_found"
    bad_changes = [
        {"admissions_per_second": 5},
        {"start_time": iso(9000)},
        {"stock": 0},
        {"per_user_limit": 31},
        {"stock": 2, "per_user_limit": None, "low_stock_threshold": 3},
        {"what": 1},
        {"start_time": iso(-5)},
    ]
    for bad in bad_changes:
        answer = patch(api, owner, drop["drop_id"], bad)
        assert answer.status_code == 400 and error_code(answer) == "invalid_request", (bad, answer.text)
    assert api.call("PATCH", f"/drops/{drop['drop_id']}", owner.token, data="nope").status_code == 400


def test_a_live_drop_cannot_be_changed(api, shop, make_drop) -> None:
    drop = make_drop(stock=5)
    refused = patch(api, shop[0], drop["drop_id"], {"stock": 50})
    assert refused.status_code == 409 and error_code(refused) == "drop_not_editable"
    assert int(Drop.get(drop["drop_id"], consistent_read=True).stock) == 5


def test_a_sharded_queue_drop_moves_its_shards_and_line_with_it(api, shop, make_drop) -> None:
    drop = make_drop(stock=40, start=600, stock_shards=4, sale_mode="queue", queue_opens_before_seconds=60)
    changed = patch(api, shop[0], drop["drop_id"], {"start_time": iso(900), "stock": 80, "admissions_per_second": 7})
    assert changed.status_code == 200, changed.text
    stored = Drop.get(drop["drop_id"], consistent_read=True)
    rows = shards.shard_rows(drop["drop_id"], 4)
    assert sum(int(row.stock) for row in rows) == 80 == sum(int(row.initial_stock) for row in rows)
    assert {int(row.start_time) for row in rows} == {int(stored.start_time)}
    assert int(Line.get(drop["drop_id"], consistent_read=True).start_time) == int(stored.start_time)
    # The queue still opens 60 s before the (new) start.
    assert (
        int(stored.opens_at) == int(stored.start_time) - 60_000
        and changed.json()["queue"]["admissions_per_second"] == 7
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "stock": st.one_of(st.integers(-2, 3), st.integers(999_999, 1_000_002), st.text(max_size=2), st.none()),
            "per_user_limit": st.one_of(st.integers(-1, 2), st.booleans()),
            "end_time": st.one_of(st.just("2031-01-01T00:00:00Z"), st.just("yesterday"), st.integers()),
            "sale_mode": st.just("draw"),
        },
    )
)
def test_a_change_is_applied_whole_or_refused_with_400(api, new_user_factory, body) -> None:
    owner, drop_id = _property_drop(api, new_user_factory)
    before = Drop.get(drop_id, consistent_read=True).attribute_values
    answer = patch(api, owner, drop_id, body)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert error_code(answer) == "invalid_request"
        assert Drop.get(drop_id, consistent_read=True).attribute_values == before
    else:
        assert all(
            answer.json()[name] == value for name, value in body.items() if name == "stock" and value is not None
        )


_drops: dict[str, tuple] = {}


def _property_drop(api, new_user_factory) -> tuple:
    if "drop" not in _drops:
        owner = new_user_factory(name="Mover", creator=True)
        creator_id, product = test_orders.open_shop(api, owner, "Mug", 900)
        body = {"product_id": product["product_id"], "start_time": iso(3600), "end_time": iso(7200), "stock": 5}
        made = api.post(f"/creators/{creator_id}/drops", owner.token, json=body)
        assert made.status_code == 201, made.text
        _drops["drop"] = (owner, made.json()["drop_id"])
    return _drops["drop"]


# --- cancelling -----------------------------------------------------------------------------------
@pytest.fixture()
def refunds(stack):
    """One fake provider for every function's copy of the app: the payments consumer charges through it,
    the api's cancel refunds through it."""
    fake = payments.FakePaymentGateway()
    with stack.override(payment_gateway=fake):
        yield fake


def test_cancelling_a_drop_refunds_the_paid_releases_the_unpaid_and_stops_orders(
    api, new_user, shop, make_drop, refunds
) -> None:
    owner = shop[0]
    drop = make_drop(stock=10, per_user_limit=3)
    paid_buyer, waiting_buyer, follower = new_user(), new_user(), new_user()
    assert api.post(f"/creators/{shop[1]}/follow", follower.token).status_code == 200
    paid = order(api, paid_buyer, drop["drop_id"], quantity=2).json()
    wait_for(lambda: api.get(f"/orders/{paid['order_id']}", paid_buyer.token).json()["status"] == "confirmed")
    waiting = order(api, waiting_buyer, drop["drop_id"], token="tok_threeDSecureRequired").json()
    cancelled = api.post(f"/drops/{drop['drop_id']}/cancel", owner.token)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["orders_refunded"] == 1 and body["orders_cancelled"] == 1
    assert api.get(f"/orders/{paid['order_id']}", paid_buyer.token).json()["status"] == "refunded"
    assert api.get(f"/orders/{waiting['order_id']}", waiting_buyer.token).json()["status"] == "cancelled"
    assert len(refunds.refunded) == 1 and int(Drop.get(drop["drop_id"], consistent_read=True).stock) == 8
    assert schedule_input(drop["drop_id"], "start") is None and schedule_input(drop["drop_id"], "end") is None
    refused = order(api, new_user(), drop["drop_id"])
    assert refused.status_code == 409 and error_code(refused) == "drop_ended"
    wait_for(lambda: api.get(f"/drops/{drop['drop_id']}").json()["status"] == "cancelled")
    sales = api.get(f"/drops/{drop['drop_id']}/sales", owner.token).json()
    assert sales["units_sold"] == 0 and sales["revenue_cents"] == 0 and sales["orders"]["cancelled"] == 1
    # A repeat settles nothing twice and refunds nothing twice.
    again = api.post(f"/drops/{drop['drop_id']}/cancel", owner.token).json()
    assert (again["status"], again["orders_refunded"], again["orders_cancelled"]) == ("cancelled", 0, 0)
    assert len(refunds.refunded) == 1
    # The follower hears of it, in the inbox (and by push, through the same pipeline).
    wait_for(
        lambda: any(
            row["type"] == "drop_cancelled"
            for row in api.get(f"/users/{follower.user_id}/notifications", follower.token).json()["items"]
        ),
        timeout=90,
    )
    # A changed mind is too late now.
    assert error_code(patch(api, owner, drop["drop_id"], {"stock": 3})) == "drop_not_editable"


def test_a_drop_is_cancelled_by_its_owner_alone_and_never_once_ended(api, new_user, shop, make_drop) -> None:
    drop = make_drop(stock=4, start=-10, end=3600, stock_shards=2)
    other = new_user(creator=True)
    assert api.post(f"/drops/{drop['drop_id']}/cancel", other.token).status_code == 404
    assert api.post(f"/drops/{drop['drop_id']}/cancel").status_code == 401
    assert api.post(f"/drops/{drop['drop_id']}/cancel", shop[0].token).status_code == 200
    now = int(Drop.get(drop["drop_id"], consistent_read=True).end_time)
    assert all(int(row.end_time) == now for row in StockShard.scan(StockShard.drop_id == drop["drop_id"]))
    # The end schedule, had it survived, leaves a cancelled drop cancelled.
    assert not scheduling.end(drop["drop_id"])
    ended = make_drop(stock=1, start=-10, end=1)
    wait_for(lambda: api.get(f"/drops/{ended['drop_id']}").json()["status"] == "ended")
    late = api.post(f"/drops/{ended['drop_id']}/cancel", shop[0].token)
    assert late.status_code == 409 and error_code(late) == "drop_not_editable"
